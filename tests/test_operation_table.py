"""The operation table: every GraphQL operation a permission rule guards, role by role, each
cell checked over real HTTP.

``TABLE`` maps an operation to what each role gets: ``OK`` (data and no error) or the error
code (``FORBIDDEN``). ``OPERATIONS`` holds each operation's document, how to prepare its
variables in a fresh organization (``tests/world.py``) and, for writes, what must be true
afterwards. A cell runs as the role's canonical user: admin ``u-admin``, teacher ``u-t1``
(T1), guardian ``u-g1`` (G1). Rows are grouped in marked blocks, one per area.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.platform.errors import AppError
from app.platform.jobs import JobStatus
from tests.world import World

OK, FORBIDDEN = "ok", "FORBIDDEN"
ROLES = ("admin", "teacher", "guardian")

Variables = dict[str, Any]


async def no_variables(world: World) -> Variables:
    return {}


async def nothing_to_check(world: World, variables: Variables, allowed: bool) -> None:
    return None


@dataclass(frozen=True)
class Operation:
    document: str
    prepare: Callable[[World], Awaitable[Variables]] = no_variables
    # After the call: what must hold, given whether the role was allowed.
    check: Callable[[World, Variables, bool], Awaitable[None]] = nothing_to_check


TABLE: dict[str, dict[str, str]] = {
    # -- admin console --
    "auditLog": {"admin": OK, "teacher": FORBIDDEN, "guardian": FORBIDDEN},
    "scheduledJobs": {"admin": OK, "teacher": FORBIDDEN, "guardian": FORBIDDEN},
    "retryJob": {"admin": OK, "teacher": FORBIDDEN, "guardian": FORBIDDEN},
    "cancelJob": {"admin": OK, "teacher": FORBIDDEN, "guardian": FORBIDDEN},
    # -- end admin console --
}


# -- admin console --


async def _job(world: World, key: str, *, failed: bool) -> Variables:
    system = await world.system()
    jobs = world.service.jobs
    await jobs.enqueue(system.actor, "test.job", {}, world.service.clock(), key)
    if failed:

        async def refused(actor, payload, key):
            raise AppError("refused")

        await jobs.run(world.org, key, {"test.job": refused})
    return {"id": key}


async def _failed_job(world: World) -> Variables:
    return await _job(world, "table:failed", failed=True)


async def _pending_job(world: World) -> Variables:
    return await _job(world, "table:pending", failed=False)


def _job_status(allowed: str, refused: str) -> Callable[[World, Variables, bool], Awaitable[None]]:
    async def check(world: World, variables: Variables, allowed_now: bool) -> None:
        job = await world.service.jobs.get(world.org, variables["id"])
        assert job is not None and job["status"] == (allowed if allowed_now else refused)

    return check


ADMIN_CONSOLE = {
    "auditLog": Operation("{ auditLog(first: 5) { totalCount edges { node { id action } } } }"),
    "scheduledJobs": Operation(
        "{ scheduledJobs(first: 5) { totalCount edges { node { id status } } } }"
    ),
    "retryJob": Operation(
        "mutation($id: ID!) { retryJob(id: $id) { id status } }",
        _failed_job,
        _job_status(JobStatus.PENDING, JobStatus.FAILED),
    ),
    "cancelJob": Operation(
        "mutation($id: ID!) { cancelJob(id: $id) { id status } }",
        _pending_job,
        _job_status(JobStatus.CANCELLED, JobStatus.PENDING),
    ),
}

# -- end admin console --


OPERATIONS: dict[str, Operation] = {
    **ADMIN_CONSOLE,
}

CELLS = [pytest.param(op, role, id=f"{op}-{role}") for op in TABLE for role in ROLES]


def test_every_operation_has_a_document_and_a_cell_per_role():
    assert set(TABLE) == set(OPERATIONS)
    assert all(set(row) == set(ROLES) for row in TABLE.values())
    assert all(v in (OK, FORBIDDEN) for row in TABLE.values() for v in row.values())


@pytest.mark.parametrize(("operation", "role"), CELLS)
async def test_cell(api, operation: str, role: str):
    spec = OPERATIONS[operation]
    variables = await spec.prepare(api.world)
    body = await api.gql(spec.document, variables, role=role)
    expected = TABLE[operation][role]
    if expected == OK:
        assert "errors" not in body, body["errors"]
        assert body["data"][operation] is not None
    else:
        assert [e["extensions"]["code"] for e in body["errors"]] == [expected]
        assert body["data"] is None
    await spec.check(api.world, variables, expected == OK)
