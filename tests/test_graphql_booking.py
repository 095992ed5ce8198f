"""Booking and the lifecycle over HTTP: the same operations, the contract's codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.booking_world import at, pack, prepare

BOOK = """mutation($input: BookSessionInput!) { bookSession(input: $input) {
  id status startTime duration subject paymentId holdExpiresAt payment { status amount } } }"""


@pytest.fixture
async def ready(api):
    await prepare(api.world)
    return api


def _input(api, start, **over):
    ids = api.world.ids
    return {
        "input": {
            "teacherId": ids["T1"],
            "studentId": ids["S1"],
            "startTime": start.isoformat(),
            "durationMinutes": 60,
            "subject": "math",
            **over,
        }
    }


def _codes(body):
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_guardian_books_pays_and_sees_the_session(ready, clock):
    api = ready
    body = await api.gql(BOOK, _input(api, at(2)), role="guardian")
    session = body["data"]["bookSession"]
    assert session["status"] == "PENDING_PAYMENT" and session["payment"]["status"] == "PENDING"
    paid = await api.gql(
        'mutation($p: ID!) { recordPaymentSucceeded(paymentId: $p, providerReference: "x") { status session { status } } }',
        {"p": session["paymentId"]},
    )
    assert paid["data"]["recordPaymentSucceeded"] == {
        "status": "PAID",
        "session": {"status": "SCHEDULED"},
    }


async def test_booking_errors_carry_their_codes(ready, clock):
    api = ready
    assert _codes(await api.gql(BOOK, _input(api, clock.now + timedelta(hours=3)))) == [
        "SCHEDULING_RULE"
    ]
    await api.gql(BOOK, _input(api, at(2)))
    assert _codes(await api.gql(BOOK, _input(api, at(2), studentId=api.world.ids["S2"]))) == [
        "CONFLICT"
    ]
    empty = await pack(api.world, credits=1)
    await api.gql(BOOK, _input(api, at(4), entitlementId=empty))
    assert _codes(await api.gql(BOOK, _input(api, at(6), entitlementId=empty))) == [
        "INSUFFICIENT_CREDITS"
    ]
    assert _codes(
        await api.gql(BOOK, _input(api, at(2), studentId=api.world.ids["S2"]), role="guardian")
    ) == ["NOT_FOUND"]
    assert _codes(await api.gql(BOOK, _input(api, at(2)), role="teacher")) == ["FORBIDDEN"]


async def test_available_slots_over_graphql(ready):
    api = ready
    day = at(-9)  # Wednesday 00:00 UTC
    query = """query($t: ID!, $f: DateTime!, $to: DateTime!) {
      availableSlots(teacherId: $t, from: $f, to: $to, durationMinutes: 60) { start end } }"""
    variables = {
        "t": api.world.ids["T1"],
        "f": day.isoformat(),
        "to": (day + timedelta(days=1)).isoformat(),
    }
    body = await api.gql(query, variables, role="guardian")
    slots = body["data"]["availableSlots"]
    assert slots[0]["start"] == "2026-11-04T08:00:00+00:00"  # 09:00 Berlin
    assert slots[-1]["end"] == "2026-11-04T16:00:00+00:00"  # 17:00 Berlin
    assert len(slots) == 29  # 09:00 ... 16:00 every 15 minutes


async def test_lifecycle_over_graphql(ready, clock):
    api = ready
    entitlement = await pack(api.world, credits=2)
    booked = await api.gql(BOOK, _input(api, at(2), entitlementId=entitlement))
    sid = booked["data"]["bookSession"]["id"]
    clock.now = at(2)
    started = await api.gql(
        "mutation($id: ID!) { startSession(id: $id) { status startedAt } }",
        {"id": sid},
        role="teacher",
    )
    assert started["data"]["startSession"]["status"] == "IN_PROGRESS"
    done = await api.gql(
        'mutation($id: ID!) { completeSession(id: $id, report: "Great") { status reportContent entitlement { remainingCredits } } }',
        {"id": sid},
        role="teacher",
    )
    assert done["data"]["completeSession"]["status"] == "COMPLETED"
    assert done["data"]["completeSession"]["entitlement"] is None  # teachers never see packs
    again = await api.gql("mutation($id: ID!) { cancelSession(id: $id) { status } }", {"id": sid})
    assert _codes(again) == ["INVALID_TRANSITION"]
    left = await api.gql(
        "query($id: ID!) { entitlement(id: $id) { remainingCredits usedCredits } }",
        {"id": entitlement},
        role="guardian",
    )
    assert left["data"]["entitlement"] == {"remainingCredits": 1, "usedCredits": 1}


async def test_settings_are_admin_only_and_all_or_nothing(ready):
    api = ready
    bad = await api.gql(
        "mutation { updateOrganizationSettings(input: {bufferMinutes: 10, slotIntervalMinutes: 7}) { bufferMinutes } }"
    )
    assert (
        _codes(bad) == ["BAD_USER_INPUT"]
        and "slotIntervalMinutes" in bad["errors"][0]["extensions"]["fields"]
    )
    current = await api.gql(
        "{ organizationSettings { bufferMinutes slotIntervalMinutes timezone autoStartSessions } }"
    )
    assert current["data"]["organizationSettings"] == {
        "bufferMinutes": 15,
        "slotIntervalMinutes": 15,
        "timezone": "UTC",
        "autoStartSessions": False,
    }
    ok = await api.gql(
        'mutation { updateOrganizationSettings(input: {bufferMinutes: 10, timezone: "Europe/Paris"}) { bufferMinutes timezone } }'
    )
    assert ok["data"]["updateOrganizationSettings"] == {
        "bufferMinutes": 10,
        "timezone": "Europe/Paris",
    }
    assert _codes(await api.gql("{ organizationSettings { bufferMinutes } }", role="guardian")) == [
        "FORBIDDEN"
    ]


async def test_recurring_over_graphql(ready):
    api = ready
    entitlement = await pack(
        api.world,
        credits=2,
        preferredTeacherId=api.world.ids["T1"],
        recurringSchedule={"dayOfWeek": 3, "hour": 10},
    )
    body = await api.gql(
        "mutation($e: ID!) { bookRecurringSessions(entitlementId: $e, weeks: 3) { booked { startTime status } skipped { start code reason } } }",
        {"e": entitlement},
        role="guardian",
    )
    result = body["data"]["bookRecurringSessions"]
    assert [b["status"] for b in result["booked"]] == ["SCHEDULED", "SCHEDULED"]
    assert [s["code"] for s in result["skipped"]] == ["INSUFFICIENT_CREDITS"]
