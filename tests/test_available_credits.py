"""``Entitlement.availableCredits`` over HTTP: remaining credits minus those held by booked
sessions, exact after every booking, cancellation and completion, also under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from tests.booking_world import at, pack, prepare

BOOK = """mutation($input: BookSessionInput!) { bookSession(input: $input) { id } }"""
PACK = """query($id: ID!) { entitlement(id: $id) {
  totalCredits remainingCredits availableCredits usedCredits status } }"""


@pytest.fixture
async def ready(api):
    await prepare(api.world)
    return api


def _booking(api, start, entitlement):
    ids = api.world.ids
    return {
        "input": {
            "teacherId": ids["T1"],
            "studentId": ids["S1"],
            "startTime": start.isoformat(),
            "durationMinutes": 60,
            "subject": "math",
            "entitlementId": entitlement,
        }
    }


async def _book(api, start, entitlement, role="guardian"):
    body = await api.gql(BOOK, _booking(api, start, entitlement), role=role)
    assert "errors" not in body, body
    return body["data"]["bookSession"]["id"]


async def _pack(api, entitlement, role="guardian"):
    body = await api.gql(PACK, {"id": entitlement}, role=role)
    assert "errors" not in body, body
    return body["data"]["entitlement"]


async def _stored_invariant(api, entitlement):
    """remaining - reserved, read from the stored bookkeeping, equals the counter."""
    state = await (await api.world.system()).internal_state("entitlement", entitlement)
    held = len(state["internal"].get("reserved", []))
    assert state["data"]["availableCredits"] == state["data"]["remainingCredits"] - held
    return state["data"]["availableCredits"]


async def test_booking_cancelling_and_completing_move_available_credits(ready, clock):
    api = ready
    entitlement = await pack(api.world, credits=4)
    assert (await _pack(api, entitlement))["availableCredits"] == 4
    first = await _book(api, at(0), entitlement)
    second = await _book(api, at(2), entitlement)
    assert await _pack(api, entitlement) == {
        "totalCredits": 4,
        "remainingCredits": 4,
        "availableCredits": 2,
        "usedCredits": 0,
        "status": "ACTIVE",
    }

    cancelled = await api.gql(
        'mutation($id: ID!) { cancelSession(id: $id, reason: "ill") { status } }',
        {"id": second},
        role="guardian",
    )
    assert cancelled["data"]["cancelSession"]["status"] == "CANCELLED"
    assert (await _pack(api, entitlement))["availableCredits"] == 3

    clock.now = at(0)
    started = await api.gql(
        "mutation($id: ID!) { startSession(id: $id) { status } }", {"id": first}, role="teacher"
    )
    assert started["data"]["startSession"]["status"] == "IN_PROGRESS"
    done = await api.gql(
        'mutation($id: ID!) { completeSession(id: $id, report: "ok") { status } }',
        {"id": first},
        role="teacher",
    )
    assert done["data"]["completeSession"]["status"] == "COMPLETED"
    after = await _pack(api, entitlement)
    assert (after["remainingCredits"], after["availableCredits"], after["usedCredits"]) == (3, 3, 1)
    assert (await _pack(api, entitlement, role="admin")) == after
    assert await _stored_invariant(api, entitlement) == 3


async def test_the_booking_refused_for_credits_is_the_one_available_credits_predicted(ready):
    api = ready
    entitlement = await pack(api.world, credits=2)
    await _book(api, at(0), entitlement)
    await _book(api, at(2), entitlement)
    assert (await _pack(api, entitlement))["availableCredits"] == 0
    body = await api.gql(BOOK, _booking(api, at(4), entitlement), role="guardian")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INSUFFICIENT_CREDITS"]
    assert (await _pack(api, entitlement))["availableCredits"] == 0


# Eight non-overlapping Wednesday and Thursday slots (10:00-16:00 Berlin, two hours apart).
SLOTS = [at(h) for h in (0, 2, 4, 6, 24, 26, 28, 30)]


async def test_concurrent_bookings_and_cancellations_keep_it_exact(ready):
    api = ready
    entitlement = await pack(api.world, credits=4)
    results = await asyncio.gather(
        *(api.gql(BOOK, _booking(api, s, entitlement), role="guardian") for s in SLOTS)
    )
    booked = [r["data"]["bookSession"]["id"] for r in results if "errors" not in r]
    refused = [r["errors"][0]["extensions"]["code"] for r in results if "errors" in r]
    assert len(booked) == 4 and refused == ["INSUFFICIENT_CREDITS"] * 4
    state = await _pack(api, entitlement)
    assert (state["remainingCredits"], state["availableCredits"]) == (4, 0)

    # Two cancellations racing two new bookings: whatever wins, the counter is exact.
    cancel = 'mutation($id: ID!) { cancelSession(id: $id, reason: "x") { id } }'
    free = [s for s, r in zip(SLOTS, results, strict=True) if "errors" in r]
    await asyncio.gather(
        *(api.gql(cancel, {"id": b}, role="guardian") for b in booked[:2]),
        *(api.gql(BOOK, _booking(api, s, entitlement), role="guardian") for s in free[:2]),
    )
    available = await _stored_invariant(api, entitlement)
    assert (await _pack(api, entitlement))["availableCredits"] == available
    assert available in (0, 1, 2)


async def test_a_pack_stored_before_the_counter_gets_it_exactly(ready):
    """Packs written before availableCredits existed lack it; the first credit move counts
    them from their bookkeeping."""
    api = ready
    entitlement = await pack(api.world, credits=4)
    await _book(api, at(0), entitlement)
    entities = api.world.service.store.collection("entities")
    await entities.update_one(
        api.world.org, {"_id": entitlement}, {"$unset": {"data.availableCredits": ""}}
    )
    assert (await _pack(api, entitlement))["availableCredits"] is None
    await _book(api, at(2), entitlement)
    assert (await _pack(api, entitlement))["availableCredits"] == 2
    assert await _stored_invariant(api, entitlement) == 2
