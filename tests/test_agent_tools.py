"""The agent's lifecycle and payment tools: the same operations as the GraphQL mutations, so
the same permission checks, and statuses in the GraphQL enums' form."""

from __future__ import annotations

from datetime import timedelta

from app.graphql.types.entities import EntitlementStatus, PaymentStatus, SessionStatus
from app.tutoring.agent.prompt import render_prompt
from app.tutoring.agent.tools import TOOLS
from app.tutoring.agent.values import ENUM_FIELDS
from tests.booking_world import at, book, pack


async def _call(entities, name, **arguments):
    return await TOOLS.call(entities, name, arguments)


def _code(result):
    assert result["ok"] is False, result
    return result["error"]["code"]


async def test_a_teacher_starts_and_marks_their_own_sessions(w, clock):
    admin = await w.as_role("admin")
    first = await book(admin, w, at(2), entitlement=await pack(w))
    second = await book(admin, w, at(26), entitlement=await pack(w))
    clock.now = at(2) - timedelta(minutes=5)

    teacher = await w.as_role("teacher")
    assert _code(await _call(await w.as_role("guardian"), "session.start", sessionId=first.id)) == (
        "FORBIDDEN"
    )
    other = await w.as_user("u-t2", "teacher")
    assert _code(await _call(other, "session.start", sessionId=first.id)) == "NOT_FOUND"
    started = await _call(teacher, "session.start", sessionId=first.id)
    assert started["ok"] and started["result"]["status"] == "IN_PROGRESS"
    assert _code(await _call(teacher, "session.start", sessionId=first.id)) == (
        "INVALID_TRANSITION"
    )

    clock.now = at(26) + timedelta(minutes=10)  # within the grace period: too early
    assert _code(await _call(teacher, "session.mark_no_show", sessionId=second.id)) == (
        "SCHEDULING_RULE"
    )
    clock.now = at(26) + timedelta(minutes=15)
    missed = await _call(teacher, "session.mark_no_show", sessionId=second.id)
    assert missed["ok"] and missed["result"]["status"] == "NO_SHOW"


async def test_payment_outcomes_and_retries_through_tools(w, clock):
    g1 = await w.as_role("guardian")
    session = await book(g1, w, at(2))
    first = session.get("paymentId")
    for role in ("guardian", "teacher"):
        entities = await w.as_role(role)
        refused = await _call(entities, "payment.record_succeeded", paymentId=first)
        assert _code(refused) == "FORBIDDEN"
        refused = await _call(entities, "payment.record_failed", paymentId=first, reason="x")
        assert _code(refused) == "FORBIDDEN"

    admin = await w.as_role("admin")
    failed = await _call(admin, "payment.record_failed", paymentId=first, reason="declined")
    assert failed["ok"] and failed["result"]["status"] == "FAILED"
    assert _code(await _call(await w.as_role("teacher"), "session.retry_payment",
                             sessionId=session.id)) == "FORBIDDEN"  # fmt: skip
    retried = await _call(g1, "session.retry_payment", sessionId=session.id)
    assert retried["ok"] and retried["result"]["status"] == "PENDING_PAYMENT"
    second = retried["result"]["paymentId"]
    assert second != first

    stale = await _call(admin, "payment.record_succeeded", paymentId=first)
    assert _code(stale) == "INVALID_TRANSITION"
    assert "retrySessionPayment" in stale["error"]["message"]
    paid = await _call(admin, "payment.record_succeeded", paymentId=second, providerReference="p")
    assert paid["ok"] and paid["result"]["status"] == "PAID"
    assert paid["result"]["refundDue"] is False
    seen = await _call(g1, "entity.get", type="session", id=session.id)
    assert seen["result"]["status"] == "SCHEDULED" and seen["result"]["paymentId"] == second


async def test_tool_arguments_are_checked(w):
    admin = await w.as_role("admin")
    missing = await _call(admin, "payment.record_failed", paymentId="x")
    assert _code(missing) == "BAD_USER_INPUT" and "(arguments)" in missing["error"]["fields"]
    extra = await _call(admin, "session.start", sessionId="x", when="now")
    assert _code(extra) == "BAD_USER_INPUT"


async def test_every_status_in_tool_results_is_the_graphql_enum_value(world):
    enums = {"session": SessionStatus, "payment": PaymentStatus, "entitlement": EntitlementStatus}
    assert {slug for slug, fields in ENUM_FIELDS.items() if fields} == set(enums)
    for slug, enum in enums.items():  # the store's values are the enum's, in lower case
        assert {v.upper() for v in ENUM_FIELDS[slug]["status"]} == {m.name for m in enum}
        assert {m.value for m in enum} == set(ENUM_FIELDS[slug]["status"])

    admin = await world.as_role("admin")
    for slug, enum in enums.items():
        listed = await _call(admin, "entity.query", type=slug)
        statuses = {item["status"] for item in listed["result"]["items"]}
        assert statuses and statuses <= {m.name for m in enum}, (slug, statuses)
        one = await _call(admin, "entity.get", type=slug, id=listed["result"]["items"][0]["id"])
        assert one["result"]["status"] in {m.name for m in enum}

    # Filters take the same form (the stored one still works), as values, lists or operators.
    for filters in (
        {"status": "SCHEDULED"},
        {"status": "scheduled"},
        {"status": {"in": ["SCHEDULED", "CANCELLED"]}},
    ):
        found = await _call(admin, "entity.query", type="session", filters=filters)
        assert len(found["result"]["items"]) == 2, filters
    none = await _call(admin, "entity.query", type="session", filters={"status": "COMPLETED"})
    assert none["result"]["items"] == []


async def test_the_prompt_shows_statuses_as_the_tools_do(world):
    prompt = await render_prompt(await world.as_role("admin"))
    assert "status SCHEDULED" in prompt and "status scheduled" not in prompt
    for tool in ("session.start", "session.retry_payment", "payment.record_succeeded"):
        assert tool in prompt
