"""Regression tests from the review of the booking code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from app.platform.calendar import ResourceCalendar
from app.tutoring.billing import create_entitlement
from app.tutoring.scheduling.booking import available_slots, reschedule_session
from app.tutoring.scheduling.payments import record_payment_succeeded
from app.tutoring.scheduling.transitions import cancel_session, complete_session, start_session
from app.tutoring.settings import update_settings
from tests.booking_world import at, book, pack
from tests.booking_world import code_of as _code


async def test_concurrent_reschedules_leave_the_session_holding_its_time(w, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, at(0), entitlement=await pack(w))
    results = await asyncio.gather(
        reschedule_session(admin, session.id, at(2)),
        reschedule_session(admin, session.id, at(4)),
        return_exceptions=True,
    )
    final = await admin.get("session", session.id)
    assert any(not isinstance(r, BaseException) for r in results)
    calendar = ResourceCalendar(w.service.store, clock=clock)
    held = await calendar.claims_of(w.org, f"teacher:{w.ids['T1']}", session.id)
    assert [(c.start, c.end) for c in held] == [
        (final.get("startTime"), final.get("startTime") + timedelta(hours=1))
    ]
    assert await _code(book(admin, w, final.get("startTime"), student="S2")) == "CONFLICT"


async def test_a_teacher_who_is_also_a_parent_acts_on_each_session_in_one_role(w, clock):
    admin = await w.as_role("admin")
    await admin.update("guardian", w.ids["G2"], {"userId": "u-t1"})  # T1 is also G2
    teaching = await book(admin, w, at(2), entitlement=await pack(w))  # T1 teaches G1's child
    both = await w.as_user("u-t1", "teacher", "guardian")
    assert await _code(cancel_session(both, teaching.id)) == "FORBIDDEN"
    assert await _code(reschedule_session(both, teaching.id, at(4))) == "FORBIDDEN"
    g2_pack = await pack(w, student="S2", guardian="G2")
    child = await book(admin, w, at(4), teacher="T2", student="S2", entitlement=g2_pack)
    clock.now = at(4)
    assert await _code(start_session(both, child.id)) == "FORBIDDEN"


async def test_reschedule_respects_the_packs_expiry(w):
    admin = await w.as_role("admin")
    short = await pack(w, expiresAt=at(24))
    session = await book(admin, w, at(2), entitlement=short)
    later = at(2) + timedelta(days=2)
    assert await _code(reschedule_session(admin, session.id, later)) == "INSUFFICIENT_CREDITS"


async def test_repeated_autumn_hour_is_offered_and_bookable(w, clock):
    admin = await w.as_role("admin")
    system = await w.system()
    await system.update(
        "teacher", w.ids["T1"], {"availability": [{"dayOfWeek": 0, "startHour": 0, "endHour": 24}]}
    )
    clock.now = datetime(2027, 10, 20, tzinfo=UTC)
    day = datetime(2027, 10, 30, 22, 0, tzinfo=UTC)  # Sunday 2027-10-31 00:00 CEST
    slots = {
        s.start
        for s in await available_slots(admin, w.ids["T1"], day, day + timedelta(hours=6), 15)
    }
    first_pass = datetime(2027, 10, 31, 0, 15, tzinfo=UTC)  # 02:15 CEST
    second_pass = datetime(2027, 10, 31, 1, 15, tzinfo=UTC)  # 02:15 CET
    assert first_pass in slots and second_pass in slots
    await book(admin, w, second_pass, minutes=15)


async def test_dates_far_away_are_bad_input(w):
    admin = await w.as_role("admin")
    far = datetime(9999, 12, 31, 23, 45, tzinfo=UTC)
    assert await _code(book(admin, w, far)) == "BAD_USER_INPUT"
    assert (
        await _code(available_slots(admin, w.ids["T1"], far - timedelta(days=1), far, 60))
        == "BAD_USER_INPUT"
    )


async def test_the_report_obeys_the_schema(w, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, at(2), entitlement=await pack(w))
    clock.now = at(2)
    await start_session(admin, session.id)
    assert await _code(complete_session(admin, session.id, "x" * 30_000)) == "BAD_USER_INPUT"


async def test_cancelling_a_session_awaiting_payment_closes_the_payment(w):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    session = await book(g1, w, at(2))
    await cancel_session(g1, session.id, "changed plans")
    payment = await admin.get("payment", session.get("paymentId"))
    assert payment.get("status") == "failed"  # nobody is asked to pay for it any more
    # The provider reports it paid anyway: the money was taken, so it is recorded, never
    # confirms the cancelled session, and is flagged for a refund.
    late = await record_payment_succeeded(admin, payment.id)
    assert late.get("status") == "paid" and late.get("refundDue") is True
    assert (await admin.get("session", session.id)).get("status") == "cancelled"


async def test_payment_within_the_hold_confirms_even_if_the_buffer_grew(w):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    await book(
        admin, w, at(3.25), student="S2", entitlement=await pack(w, student="S2", guardian="G2")
    )
    session = await book(g1, w, at(2))  # 12:00-13:00, next starts 13:15 (buffer 15)
    await update_settings(admin, {"bufferMinutes": 30})
    await record_payment_succeeded(admin, session.get("paymentId"))
    assert (await admin.get("session", session.id)).get("status") == "scheduled"


async def test_a_pack_paid_through_a_pending_payment_that_points_at_it_is_unusable(w):
    from app.tutoring.billing import create_payment

    admin = await w.as_role("admin")
    entitlement = await create_entitlement(
        admin, {"guardianId": w.ids["G1"], "studentId": w.ids["S1"], "totalCredits": 2}
    )
    await create_payment(
        admin, {"guardianId": w.ids["G1"], "amount": 90, "entitlementId": entitlement.id}
    )
    assert await _code(book(admin, w, at(2), entitlement=entitlement.id)) == "INSUFFICIENT_CREDITS"


async def test_bad_datetime_variables_are_bad_user_input(api):
    body = await api.gql(
        'query($f: DateTime!) { availableSlots(teacherId: "x", from: $f, to: $f, durationMinutes: 60) { start } }',
        {"f": "2026-13-04T10:00Z"},
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
