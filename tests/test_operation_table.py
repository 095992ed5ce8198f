"""Operations x callers -> expected outcome, every cell checked over real HTTP.

Each row is an operation and what each caller gets: ``"ok"`` (an answer without errors) or
the contract's error code. Rows are grouped in clearly marked blocks, one per area, each
self-contained (its callers, its prepared state, its test), so blocks merge side by side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.booking_world import at, book, pack, prepare
from tests.world import NOW

# -- payments and agent tools ---------------------------------------------------------------
# Every rule this area adds, on a session of G1's child S1 taught by T1: the session's own
# admin, teacher and guardian, and a teacher (T2) and a guardian (G2) it does not belong to.
# Payment outcomes are the paymentOutcome resource's (roles.py: admins only); retrying, starting
# and no-shows are rows of the lifecycle table (lifecycle.py), reached through the caller's
# scope; refunds due are read like any payment. The agent's tools call the same operations,
# so they get the same answers.

PAY_CALLERS = {
    "admin": ("u-admin", "admin"),
    "teacher": ("u-t1", "teacher"),
    "guardian": ("u-g1", "guardian"),
    "other teacher": ("u-t2", "teacher"),
    "other guardian": ("u-g2", "guardian"),
}
_ADMIN_ONLY = {
    "admin": "ok",
    "teacher": "FORBIDDEN",
    "guardian": "FORBIDDEN",
    "other teacher": "FORBIDDEN",
    "other guardian": "FORBIDDEN",
}
_GUARDIAN_OR_ADMIN = {
    "admin": "ok",
    "teacher": "FORBIDDEN",
    "guardian": "ok",
    "other teacher": "NOT_FOUND",
    "other guardian": "NOT_FOUND",
}
_TEACHER_OR_ADMIN = {
    "admin": "ok",
    "teacher": "ok",
    "guardian": "FORBIDDEN",
    "other teacher": "NOT_FOUND",
    "other guardian": "NOT_FOUND",
}
PAY_TABLE: dict[str, dict[str, str]] = {
    "recordPaymentSucceeded": _ADMIN_ONLY,
    "recordPaymentFailed": _ADMIN_ONLY,
    "retrySessionPayment": _GUARDIAN_OR_ADMIN,
    "payments(refundDue)": {
        "admin": "ok",
        "teacher": "FORBIDDEN",
        "guardian": "ok",
        "other teacher": "FORBIDDEN",
        "other guardian": "ok",  # their own refunds due: none
    },
    "tool payment.record_succeeded": _ADMIN_ONLY,
    "tool payment.record_failed": _ADMIN_ONLY,
    "tool session.retry_payment": _GUARDIAN_OR_ADMIN,
    "tool session.start": _TEACHER_OR_ADMIN,
    "tool session.mark_no_show": _TEACHER_OR_ADMIN,
}


async def _pay_pending(world: Any, clock: Any) -> dict[str, Any]:
    session = await book(await world.as_role("guardian"), world, at(2))
    return {"session": session.id, "payment": session.get("paymentId")}


async def _pay_failed(world: Any, clock: Any) -> dict[str, Any]:
    from app.tutoring.scheduling.payments import record_payment_failed

    ids = await _pay_pending(world, clock)
    clock.now = NOW + timedelta(minutes=5)
    await record_payment_failed(await world.as_role("admin"), ids["payment"], "declined")
    return ids


async def _pay_scheduled(world: Any, clock: Any, minutes_after_start: int) -> dict[str, Any]:
    session = await book(await world.as_role("admin"), world, at(2), entitlement=await pack(world))
    clock.now = at(2) + timedelta(minutes=minutes_after_start)
    return {"session": session.id}


async def _pay_startable(world: Any, clock: Any) -> dict[str, Any]:
    return await _pay_scheduled(world, clock, -5)


async def _pay_missed(world: Any, clock: Any) -> dict[str, Any]:
    return await _pay_scheduled(world, clock, 20)


async def _pay_nothing(world: Any, clock: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class PayOperation:
    prepare: Callable[[Any, Any], Awaitable[dict[str, Any]]]
    document: str | None = None  # a GraphQL operation on the prepared ids ...
    tool: str | None = None  # ... or an agent tool called through callAgentTool
    arguments: Callable[[dict[str, Any]], dict[str, Any]] = lambda ids: {}


PAY_OPERATIONS = {
    "recordPaymentSucceeded": PayOperation(
        _pay_pending,
        'mutation($payment: ID!) { recordPaymentSucceeded(id: $payment, providerReference: "p")'
        " { status } }",
    ),
    "recordPaymentFailed": PayOperation(
        _pay_pending,
        'mutation($payment: ID!) { recordPaymentFailed(id: $payment, reason: "x") { status } }',
    ),
    "retrySessionPayment": PayOperation(
        _pay_failed, "mutation($session: ID!) { retrySessionPayment(id: $session) { paymentId } }"
    ),
    "payments(refundDue)": PayOperation(
        _pay_nothing, "{ payments(filter: {refundDue: true}) { totalCount } }"
    ),
    "tool payment.record_succeeded": PayOperation(
        _pay_pending,
        tool="payment.record_succeeded",
        arguments=lambda i: {"paymentId": i["payment"]},
    ),
    "tool payment.record_failed": PayOperation(
        _pay_pending,
        tool="payment.record_failed",
        arguments=lambda i: {"paymentId": i["payment"], "reason": "x"},
    ),
    "tool session.retry_payment": PayOperation(
        _pay_failed, tool="session.retry_payment", arguments=lambda i: {"sessionId": i["session"]}
    ),
    "tool session.start": PayOperation(
        _pay_startable, tool="session.start", arguments=lambda i: {"sessionId": i["session"]}
    ),
    "tool session.mark_no_show": PayOperation(
        _pay_missed, tool="session.mark_no_show", arguments=lambda i: {"sessionId": i["session"]}
    ),
}
_CALL_TOOL = "mutation($name: String!, $arguments: JSON!) { callAgentTool(name: $name, arguments: $arguments) }"


def test_payments_and_agent_tools_table_is_complete():
    assert set(PAY_OPERATIONS) == set(PAY_TABLE)
    for row in PAY_TABLE.values():
        assert set(row) == set(PAY_CALLERS)


@pytest.mark.parametrize("caller", list(PAY_CALLERS))
@pytest.mark.parametrize("operation", list(PAY_TABLE))
async def test_payments_and_agent_tools_cell(api, clock, operation, caller):
    await prepare(api.world)
    spec = PAY_OPERATIONS[operation]
    ids = await spec.prepare(api.world, clock)
    token = api.token(*PAY_CALLERS[caller])
    if spec.tool is None:
        body = await api.gql(spec.document, ids, token=token)
        codes = sorted({e["extensions"]["code"] for e in body.get("errors", [])})
        got = ",".join(codes) if codes else "ok"
        if not codes:
            assert None not in body["data"].values(), body
    else:
        variables = {"name": spec.tool, "arguments": spec.arguments(ids)}
        result = (await api.gql(_CALL_TOOL, variables, token=token))["data"]["callAgentTool"]
        got = "ok" if result["ok"] else result["error"]["code"]
    assert got == PAY_TABLE[operation][caller], (operation, caller)


# -- end of payments and agent tools --------------------------------------------------------
