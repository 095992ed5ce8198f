"""Operations x callers -> expected outcome, every cell checked over real HTTP.

A row is an operation on a prepared subject (a GraphQL document and its variables) and the
outcome for each caller: ``"ok"`` or the error code the contract gives. Callers are tokens of
the world's users (``ACTORS``). Rows are grouped in blocks, one per feature, each clearly
marked, so that blocks added side by side merge cleanly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from app.platform.errors import AppError
from app.platform.jobs import JobStatus
from tests.booking_world import at, book, pack, prepare
from tests.world import NOW

OK = "ok"

# Caller -> (user, roles). u-t1 is teacher T1; in every cell u-t1 is also linked to guardian
# G2 (S2's parent, whom T2 teaches), which grants nothing unless the token claims "guardian".
ACTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("u-admin", ("admin",)),
    "teacher": ("u-t1", ("teacher",)),
    "guardian": ("u-g1", ("guardian",)),
    "teacher+guardian": ("u-t1", ("teacher", "guardian")),
    # Signed in, with a role the organization does not define: granted nothing.
    "none": ("u-visitor", ("visitor",)),
}

Subject = Callable[[Any], Awaitable[dict[str, Any]]]  # the world -> the variables


Check = Callable[[Any, dict[str, Any], bool], Awaitable[None]]  # world, variables, allowed


@dataclass(frozen=True)
class Row:
    name: str
    query: str
    subject: Subject
    outcomes: dict[str, str]  # caller -> "ok" or an error code
    check: Check | None = None  # after the call: what must hold, given the outcome
    tool: bool = False  # the query calls an agent tool: its result carries the outcome


ROWS: list[Row] = []


async def _nothing(world) -> dict[str, Any]:
    return {}


async def _ids(world, **keys: str) -> dict[str, Any]:
    return {name: world.ids[key] for name, key in keys.items()}


# -- shared reports and availability --------------------------------------------------------


async def _completed(world, teacher: str, student: str, guardian: str) -> str:
    """A completed session with an unshared report."""
    system = await world.system()
    ids = world.ids
    session = await system.create(
        "session",
        {"subject": "math", "reportSubmitted": True, "reportContent": "draft report"},
        server_fields={
            "teacherId": ids[teacher],
            "studentId": ids[student],
            "guardianId": ids[guardian],
            "startTime": NOW - timedelta(days=1),
            "duration": 60,
            "status": "completed",
            "completedAt": NOW - timedelta(hours=23),
            "reportShared": False,
        },
    )
    return session.id


async def _taught_by_t1(world) -> dict[str, Any]:
    return {"id": await _completed(world, "T1", "S1", "G1")}


async def _their_child_with_t2(world) -> dict[str, Any]:
    return {"id": await _completed(world, "T2", "S2", "G2")}


async def _scheduled(world) -> dict[str, Any]:
    return {"id": world.ids["X1"]}  # T1 teaching S1 (G1's child), not yet held


def _slots_for(student: str | None) -> Subject:
    async def variables(world) -> dict[str, Any]:
        day = at(-9)  # Wednesday 00:00 UTC; T1 teaches 09:00-17:00 Berlin
        return {
            "t": world.ids["T1"],
            "f": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
            "s": world.ids[student] if student else None,
        }

    return variables


SHARE = "mutation($id: ID!) { shareSessionReport(id: $id) { id reportShared } }"
UNSHARE = "mutation($id: ID!) { unshareSessionReport(id: $id) { id reportShared } }"
SLOTS = """query($t: ID!, $f: DateTime!, $to: DateTime!, $s: ID) {
  availableSlots(teacherId: $t, from: $f, to: $to, durationMinutes: 60, studentId: $s) { start } }"""

for _verb, _doc in (("share", SHARE), ("unshare", UNSHARE)):
    ROWS += [
        Row(f"{_verb} the report of a completed session T1 taught", _doc, _taught_by_t1,
            {"admin": OK, "teacher": OK, "guardian": "FORBIDDEN", "teacher+guardian": OK, "none": "FORBIDDEN"}),
        # T1 is G2 too: on their child's session they act as its guardian, not as a teacher.
        Row(f"{_verb} the report of their child's completed session with T2", _doc,
            _their_child_with_t2,
            {"admin": OK, "teacher": "NOT_FOUND", "guardian": "NOT_FOUND",
             "teacher+guardian": "FORBIDDEN", "none": "FORBIDDEN"}),
        Row(f"{_verb} the report of a session not completed", _doc, _scheduled,
            {"admin": "INVALID_TRANSITION", "teacher": "INVALID_TRANSITION",
             "guardian": "FORBIDDEN", "teacher+guardian": "INVALID_TRANSITION", "none": "FORBIDDEN"}),
    ]  # fmt: skip
ROWS += [
    Row("availableSlots without a student", SLOTS, _slots_for(None),
        {"admin": OK, "teacher": OK, "guardian": OK, "teacher+guardian": OK, "none": "FORBIDDEN"}),
    # A student's busy times are for those who may book for them: guardian and admin.
    Row("availableSlots for S1 (G1's child, taught by T1)", SLOTS, _slots_for("S1"),
        {"admin": OK, "teacher": "FORBIDDEN", "guardian": OK, "teacher+guardian": "FORBIDDEN", "none": "FORBIDDEN"}),
    Row("availableSlots for S2 (G2's child, taught by T2)", SLOTS, _slots_for("S2"),
        {"admin": OK, "teacher": "FORBIDDEN", "guardian": "NOT_FOUND", "teacher+guardian": OK, "none": "FORBIDDEN"}),
]  # fmt: skip

# Overlapping roles: a relation the system follows for the caller is not a filter they typed;
# a filter they type uses only fields every role that lists the type may see.
ROWS += [
    Row("me.guardian.students (the caller's own children)",
        "{ me { guardian { students { totalCount } } } }", _nothing,
        # ``me`` answers every signed-in caller; a role with no guardian link gets null there.
        {"admin": OK, "teacher": OK, "guardian": OK, "teacher+guardian": OK, "none": OK}),
    Row("sessions filtered by guardianId",
        "query($g: ID!) { sessions(filter: {guardianId: $g}) { totalCount } }",
        lambda world: _ids(world, g="G2"),
        {"admin": OK, "teacher": "FORBIDDEN", "guardian": OK, "teacher+guardian": "FORBIDDEN",
         "none": "FORBIDDEN"}),
]  # fmt: skip


# -- end of shared reports and availability -------------------------------------------------


# -- admin console -----------------------------------------------------------------------------


async def _job(world, key: str, *, failed: bool) -> dict[str, Any]:
    system = await world.system()
    jobs = world.service.jobs
    await jobs.enqueue(system.actor, "test.job", {}, world.service.clock(), key)
    if failed:

        async def refused(actor, payload, key):
            raise AppError("refused")

        await jobs.run(world.org, key, {"test.job": refused})
    return {"id": key}


async def _failed_job(world) -> dict[str, Any]:
    return await _job(world, "table:failed", failed=True)


async def _pending_job(world) -> dict[str, Any]:
    return await _job(world, "table:pending", failed=False)


def _job_status(allowed: str, refused: str) -> Check:
    async def check(world, variables: dict[str, Any], allowed_now: bool) -> None:
        job = await world.service.jobs.get(world.org, variables["id"])
        assert job is not None and job["status"] == (allowed if allowed_now else refused)

    return check


_ADMIN_ONLY = {"admin": OK, "teacher": "FORBIDDEN", "guardian": "FORBIDDEN",
               "teacher+guardian": "FORBIDDEN", "none": "FORBIDDEN"}  # fmt: skip
ROWS += [
    Row("auditLog", "{ auditLog(first: 5) { totalCount edges { node { id action } } } }",
        _nothing, _ADMIN_ONLY),
    Row("scheduledJobs", "{ scheduledJobs(first: 5) { totalCount edges { node { id status } } } }",
        _nothing, _ADMIN_ONLY),
    Row("retryJob of a failed job", "mutation($id: ID!) { retryJob(id: $id) { id status } }",
        _failed_job, _ADMIN_ONLY, _job_status(JobStatus.PENDING, JobStatus.FAILED)),
    Row("cancelJob of a pending job", "mutation($id: ID!) { cancelJob(id: $id) { id status } }",
        _pending_job, _ADMIN_ONLY, _job_status(JobStatus.CANCELLED, JobStatus.PENDING)),
]  # fmt: skip

# -- end of admin console -----------------------------------------------------------------------


# -- guardian and teacher features ------------------------------------------------------------
# messages: the caller's own outbox messages (admins: the organization's); bookingPolicy: the
# booking rules every role reads; organizationSettings: every other setting, admin-only.

_EVERY_ROLE = {"admin": OK, "teacher": OK, "guardian": OK, "teacher+guardian": OK,
               "none": "FORBIDDEN"}  # fmt: skip
ROWS += [
    Row("messages", "{ messages(first: 5) { totalCount edges { node { id kind } } } }",
        _nothing, _EVERY_ROLE),
    Row("bookingPolicy", "{ bookingPolicy { timezone minBookingLeadMinutes currency } }",
        _nothing, _EVERY_ROLE),
    Row("organizationSettings", "{ organizationSettings { timezone bufferMinutes } }",
        _nothing, _ADMIN_ONLY),
]  # fmt: skip

# -- end of guardian and teacher features ------------------------------------------------------


# -- payments and agent tools ---------------------------------------------------------------
# Payment outcomes are the paymentOutcome resource's (roles.py: admins only); retrying, starting
# and no-shows are rows of the lifecycle table (lifecycle.py), reached through the caller's
# scope; refunds due are read like any payment. The agent's tools call the same operations,
# so they get the same answers. Subjects: sessions of S1 (G1's child, taught by T1) and of S2
# (G2's child, taught by T2; u-t1 is G2 too).

_WHOSE = {"S1": ("T1", "G1"), "S2": ("T2", "G2")}


async def _pending(world, student: str = "S1") -> dict[str, Any]:
    teacher, _ = _WHOSE[student]
    session = await book(await world.system(), world, at(2), teacher=teacher, student=student)
    return {"session": session.id, "payment": session.get("paymentId")}


def _failed(student: str) -> Subject:
    async def variables(world) -> dict[str, Any]:
        from app.tutoring.scheduling.payments import record_payment_failed

        ids = await _pending(world, student)
        world.service.clock.now = NOW + timedelta(minutes=5)
        await record_payment_failed(await world.as_role("admin"), ids["payment"], "declined")
        return ids

    return variables


def _held(student: str, minutes_after_start: int) -> Subject:
    async def variables(world) -> dict[str, Any]:
        teacher, guardian = _WHOSE[student]
        entitlement = await pack(world, student=student, guardian=guardian)
        session = await book(
            await world.as_role("admin"), world, at(2), teacher=teacher, student=student,
            entitlement=entitlement,
        )  # fmt: skip
        world.service.clock.now = at(2) + timedelta(minutes=minutes_after_start)
        return {"session": session.id}

    return variables


def _tool(name: str) -> str:
    return f'mutation($arguments: JSON!) {{ callAgentTool(name: "{name}", arguments: $arguments) }}'


def _with(subject: Subject, **arguments: str) -> Subject:
    """The tool's arguments: each names a prepared id (``"session"``) or is a literal."""

    async def variables(world) -> dict[str, Any]:
        ids = await subject(world)
        return {"arguments": {k: ids.get(v, v) for k, v in arguments.items()}}

    return variables


SUCCEEDED = 'mutation($payment: ID!) { recordPaymentSucceeded(id: $payment, providerReference: "p") { status } }'
FAILED = 'mutation($payment: ID!) { recordPaymentFailed(id: $payment, reason: "x") { status } }'
RETRY = "mutation($session: ID!) { retrySessionPayment(id: $session) { paymentId } }"
REFUNDS = "{ payments(filter: {refundDue: true}) { totalCount } }"
_AS_G1 = {
    "admin": OK,
    "teacher": "FORBIDDEN",
    "guardian": OK,
    "teacher+guardian": "FORBIDDEN",
    "none": "FORBIDDEN",
}
_AS_G2 = {
    "admin": OK,
    "teacher": "NOT_FOUND",
    "guardian": "NOT_FOUND",
    "teacher+guardian": OK,
    "none": "FORBIDDEN",
}
_AS_T1 = {
    "admin": OK,
    "teacher": OK,
    "guardian": "FORBIDDEN",
    "teacher+guardian": OK,
    "none": "FORBIDDEN",
}
_AS_T2 = {
    "admin": OK,
    "teacher": "NOT_FOUND",
    "guardian": "NOT_FOUND",
    "teacher+guardian": "FORBIDDEN",
    "none": "FORBIDDEN",
}
ROWS += [
    Row("recordPaymentSucceeded", SUCCEEDED, _pending, _ADMIN_ONLY),
    Row("recordPaymentFailed", FAILED, _pending, _ADMIN_ONLY),
    Row("retrySessionPayment of S1's failed payment", RETRY, _failed("S1"), _AS_G1),
    Row("retrySessionPayment of S2's failed payment", RETRY, _failed("S2"), _AS_G2),
    Row("payments(refundDue)", REFUNDS, _nothing,
        {"admin": OK, "teacher": "FORBIDDEN", "guardian": OK, "teacher+guardian": OK, "none": "FORBIDDEN"}),
    Row("tool payment.record_succeeded", _tool("payment.record_succeeded"), _with(_pending, paymentId="payment"), _ADMIN_ONLY, tool=True),
    Row("tool payment.record_failed", _tool("payment.record_failed"), _with(_pending, paymentId="payment", reason="x"), _ADMIN_ONLY, tool=True),
    Row("tool session.retry_payment of S1", _tool("session.retry_payment"), _with(_failed("S1"), sessionId="session"), _AS_G1, tool=True),
    Row("tool session.retry_payment of S2", _tool("session.retry_payment"), _with(_failed("S2"), sessionId="session"), _AS_G2, tool=True),
    Row("tool session.start of S1", _tool("session.start"), _with(_held("S1", -5), sessionId="session"), _AS_T1, tool=True),
    Row("tool session.start of S2", _tool("session.start"), _with(_held("S2", -5), sessionId="session"), _AS_T2, tool=True),
    Row("tool session.mark_no_show of S1", _tool("session.mark_no_show"), _with(_held("S1", 20), sessionId="session"), _AS_T1, tool=True),
    Row("tool session.mark_no_show of S2", _tool("session.mark_no_show"), _with(_held("S2", 20), sessionId="session"), _AS_T2, tool=True),
]  # fmt: skip

# -- end of payments and agent tools --------------------------------------------------------


CELLS = [
    pytest.param(row, actor, id=f"{row.name} | {actor}")
    for row in ROWS
    for actor in ACTORS
    if actor in row.outcomes
]


def test_every_row_names_every_caller():
    for row in ROWS:
        assert set(row.outcomes) == set(ACTORS), row.name


@pytest.mark.parametrize(("row", "actor"), CELLS)
async def test_cell(api, row: Row, actor: str):
    world = api.world
    await prepare(world)
    admin = await world.as_role("admin")
    await admin.update("guardian", world.ids["G2"], {"userId": "u-t1"})
    variables = await row.subject(world)
    user, roles = ACTORS[actor]
    body = await api.gql(row.query, variables, token=api.token(user, *roles))
    expected = row.outcomes[actor]
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    if row.tool and not codes:
        result = body["data"]["callAgentTool"]
        codes = [] if result["ok"] else [result["error"]["code"]]
    if expected == OK:
        assert not codes, body
        assert all(v is not None for v in body["data"].values()), body
    else:
        assert codes == [expected], body
    if row.check is not None:
        await row.check(world, variables, expected == OK)
