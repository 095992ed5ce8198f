"""Booking rules: the spec's scheduling tests and the bugs of its sketch, fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.scheduling.booking import available_slots
from app.tutoring.scheduling.transitions import cancel_session, complete_session, start_session
from tests.booking_world import WED_10_BERLIN, at, book, pack
from tests.booking_world import code_of as _code

# -- the spec's scheduling tests ------------------------------------------------------------


async def test_reject_booking_within_24_hours(w, clock):
    admin = await w.as_role("admin")
    monday_13_berlin_in_12h = clock.now + timedelta(hours=12)  # 00:00 Berlin: also off-hours
    assert await _code(book(admin, w, monday_13_berlin_in_12h)) == "SCHEDULING_RULE"
    clock.now = WED_10_BERLIN - timedelta(hours=12)
    with pytest.raises(AppError) as err:
        await book(admin, w, WED_10_BERLIN)
    assert err.value.code is ErrorCode.SCHEDULING_RULE and "24 hours" in err.value.message


async def test_reject_double_booking(w):
    admin = await w.as_role("admin")
    await book(admin, w, at(5))  # 15:00 Berlin
    assert await _code(book(admin, w, at(5), student="S2")) == "CONFLICT"


async def test_pack_credit_deduction(w, clock):
    admin = await w.as_role("admin")
    entitlement = await pack(w, credits=4)
    session = await book(admin, w, at(0), entitlement=entitlement)
    clock.now = at(0)
    teacher = await w.as_role("teacher")
    await start_session(teacher, session.id)
    await complete_session(teacher, session.id, "Fractions, well done.")
    after = await admin.get("entitlement", entitlement)
    assert after.get("remainingCredits") == 3 and after.get("usedCredits") == 1
    assert after.get("status") == "active"


# -- availability, to the minute and in the teacher's time zone ------------------------------


async def test_availability_is_minute_precise(w):
    admin = await w.as_role("admin")
    system = await w.system()
    await system.update(
        "teacher",
        w.ids["T1"],
        {"availability": [{"dayOfWeek": 3, "startHour": 9, "startMinute": 30, "endHour": 15}]},
    )
    # The spec's sketch accepted 14:30 + 60 min in a window ending at 15:00.
    assert await _code(book(admin, w, at(4.5))) == "SCHEDULING_RULE"  # 14:30-15:30 Berlin
    assert await _code(book(admin, w, at(-0.75))) == "SCHEDULING_RULE"  # 09:15, before 09:30
    await book(admin, w, at(4))  # 14:00-15:00: ends exactly at the window's end
    await book(admin, w, at(-0.5), student="S2")  # 09:30 exactly


async def test_window_ending_at_midnight(w):
    admin = await w.as_role("admin")
    system = await w.system()
    await system.update(
        "teacher", w.ids["T1"], {"availability": [{"dayOfWeek": 3, "startHour": 22, "endHour": 24}]}
    )
    await book(admin, w, at(13))  # 23:00-24:00 Berlin
    assert await _code(book(admin, w, at(13.5), student="S2", minutes=60)) in ("SCHEDULING_RULE",)


async def test_slots_use_the_grid(w):
    admin = await w.as_role("admin")
    assert await _code(book(admin, w, at(0) + timedelta(minutes=7))) == "SCHEDULING_RULE"


async def test_booking_across_a_daylight_saving_change(w, clock):
    """New York teacher, Mondays 09:00-17:00 local. DST starts Sunday 2027-03-14: 09:00 local
    is 14:00 UTC on March 8 and 13:00 UTC on March 15. Read in server time (UTC) or with a
    fixed offset, one of these would be wrong."""
    admin = await w.as_role("admin")
    system = await w.system()
    await system.update(
        "teacher",
        w.ids["T1"],
        {
            "timezone": "America/New_York",
            "availability": [{"dayOfWeek": 1, "startHour": 9, "endHour": 17}],
        },
    )
    clock.now = datetime(2027, 3, 1, tzinfo=UTC)
    await book(admin, w, datetime(2027, 3, 8, 14, 0, tzinfo=UTC))  # 09:00 EST
    await book(admin, w, datetime(2027, 3, 15, 13, 0, tzinfo=UTC))  # 09:00 EDT
    # 13:00 UTC on March 8 is 08:00 EST: before the window.
    assert (
        await _code(book(admin, w, datetime(2027, 3, 8, 13, 0, tzinfo=UTC), student="S2"))
        == "SCHEDULING_RULE"
    )
    # A session spanning the change itself: Sunday window 00:00-06:00 local; 01:30 EST for 90
    # real minutes ends at 04:00 EDT (02:00-03:00 does not exist), inside the window.
    await system.update(
        "teacher",
        w.ids["T2"],
        {
            "timezone": "America/New_York",
            "availability": [{"dayOfWeek": 0, "startHour": 0, "endHour": 6}],
        },
    )
    start = datetime(2027, 3, 14, 6, 30, tzinfo=UTC)  # 01:30 EST
    session = await book(admin, w, start, teacher="T2", student="S2", minutes=90)
    assert session.get("startTime") == start
    # 04:45 EDT + 90 minutes = 06:15 EDT: past the window's wall-clock end.
    late = datetime(2027, 3, 14, 8, 45, tzinfo=UTC)
    assert (
        await _code(book(admin, w, late, teacher="T2", student="S3", minutes=90))
        == "SCHEDULING_RULE"
    )


# -- overlaps --------------------------------------------------------------------------------


async def test_buffer_on_both_sides_of_a_teachers_session(w):
    admin = await w.as_role("admin")
    await book(admin, w, at(2))  # 12:00-13:00 Berlin, buffer 15 min
    assert await _code(book(admin, w, at(3), student="S2")) == "CONFLICT"  # 13:00: inside buffer
    assert await _code(book(admin, w, at(1), student="S2", minutes=50)) == "CONFLICT"  # ends 11:50
    await book(admin, w, at(3.25), student="S2")  # 13:15
    await book(admin, w, at(0.75), student="S3", minutes=30)  # 10:45-11:15, then 45 min gap
    # Another teacher is free at the same time (the buffer is per teacher).
    other_teacher = await book(admin, w, at(2), teacher="T2", student="S2", minutes=30)
    assert other_teacher.get("teacherId") == w.ids["T2"]


async def test_a_student_cannot_be_in_two_sessions_at_once(w):
    admin = await w.as_role("admin")
    await book(admin, w, at(2))
    with pytest.raises(AppError) as err:
        await book(admin, w, at(2.5), teacher="T2")
    assert err.value.code is ErrorCode.CONFLICT and "student" in err.value.message
    await book(admin, w, at(3), teacher="T2")  # right after: no buffer between a student's sessions


async def test_cancelling_frees_the_slot(w):
    admin = await w.as_role("admin")
    first = await book(admin, w, at(2))
    await cancel_session(admin, first.id, "illness")
    again = await book(admin, w, at(2), student="S2")
    assert again.get("startTime") == at(2)
    cancelled = await admin.get("session", first.id)
    assert (
        cancelled.get("status") == "cancelled" and cancelled.get("cancellationReason") == "illness"
    )
    assert cancelled.get("cancelledBy") == "u-admin" and cancelled.get("cancelledAt") is not None


# -- who books for whom --------------------------------------------------------------------


async def test_guardian_books_only_for_own_children(w):
    g1 = await w.as_role("guardian")
    session = await book(g1, w, at(2))
    assert session.get("guardianId") == w.ids["G1"]
    assert await _code(book(g1, w, at(4), student="S2")) == "NOT_FOUND"
    teacher = await w.as_role("teacher")
    assert await _code(book(teacher, w, at(4))) == "FORBIDDEN"


async def test_guardian_cannot_book_with_another_guardians_pack(w):
    g1 = await w.as_role("guardian")
    theirs = await pack(w, student="S2", guardian="G2")
    assert await _code(book(g1, w, at(2), entitlement=theirs)) == "NOT_FOUND"


# -- credits --------------------------------------------------------------------------------


async def test_credits_are_reserved_at_booking(w):
    admin = await w.as_role("admin")
    entitlement = await pack(w, credits=2)
    first = await book(admin, w, at(0), entitlement=entitlement)
    await book(admin, w, at(2), entitlement=entitlement)
    with pytest.raises(AppError) as err:
        await book(admin, w, at(4), entitlement=entitlement)
    assert err.value.code is ErrorCode.INSUFFICIENT_CREDITS
    await cancel_session(admin, first.id)  # gives its reserved credit back
    await book(admin, w, at(4), entitlement=entitlement)


async def test_expired_or_other_students_packs_are_refused(w):
    admin = await w.as_role("admin")
    expired_before_session = await pack(w, expiresAt=at(-1))
    assert (
        await _code(book(admin, w, at(2), entitlement=expired_before_session))
        == "INSUFFICIENT_CREDITS"
    )
    sams = await pack(w)
    assert await _code(book(admin, w, at(2), student="S3", entitlement=sams)) == "BAD_USER_INPUT"


async def test_pack_bought_with_pending_payment_is_unusable_until_paid(w):
    from app.tutoring.billing import create_payment
    from app.tutoring.scheduling.payments import record_payment_succeeded

    admin = await w.as_role("admin")
    payment = await create_payment(admin, {"guardianId": w.ids["G1"], "amount": 200})
    entitlement = await pack(w, paymentId=payment.id)
    assert await _code(book(admin, w, at(2), entitlement=entitlement)) == "INSUFFICIENT_CREDITS"
    await record_payment_succeeded(admin, payment.id, "psp-1")
    session = await book(admin, w, at(2), entitlement=entitlement)
    assert session.get("status") == "scheduled"


# -- availableSlots = what booking accepts --------------------------------------------------


async def test_available_slots_are_exactly_the_bookable_times(w, clock):
    admin = await w.as_role("admin")
    await book(admin, w, at(2))  # 12:00-13:00 Berlin
    day_start = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    slots = await available_slots(admin, w.ids["T1"], day_start, day_end, 60)
    offered = {s.start for s in slots}
    assert offered, "some slots must be offered"
    accepted = set()
    t = day_start
    while t + timedelta(hours=1) <= day_end:
        try:
            session = await book(admin, w, t, student="S2")
        except AppError as exc:
            assert exc.code in (ErrorCode.SCHEDULING_RULE, ErrorCode.CONFLICT)
        else:
            accepted.add(t)
            await cancel_session(admin, session.id)
        t += timedelta(minutes=15)
    assert offered == accepted
    assert at(2) not in offered and at(3) not in offered and at(3.25) in offered


async def test_available_slots_validate_input(w):
    admin = await w.as_role("admin")
    start = at(0)
    for end, minutes in (
        (start - timedelta(hours=1), 60),
        (start + timedelta(days=90), 60),
        (start + timedelta(days=1), 0),
    ):
        assert (
            await _code(available_slots(admin, w.ids["T1"], start, end, minutes))
            == "BAD_USER_INPUT"
        )


async def test_a_claim_left_by_a_crashed_booking_is_cleared_when_in_the_way(w, clock):
    from app.platform.calendar import ResourceCalendar

    calendar = ResourceCalendar(w.service.store, clock=clock)
    await calendar.claim(
        w.org, f"teacher:{w.ids['T1']}", owner="never-written", start=at(2), end=at(3)
    )
    admin = await w.as_role("admin")
    clock.advance(minutes=1)  # a booking that may still be running: respected
    assert await _code(book(admin, w, at(2))) == "CONFLICT"
    clock.advance(minutes=2)  # old, and its session never appeared: cleared
    assert (await book(admin, w, at(2))).get("startTime") == at(2)


async def test_completion_prunes_long_past_intervals(w, clock):
    from app.platform.calendar import ResourceCalendar
    from app.tutoring.scheduling.transitions import complete_session, start_session

    admin = await w.as_role("admin")
    old = await book(admin, w, at(2), entitlement=await pack(w))
    current = await book(admin, w, at(2) + timedelta(days=7), entitlement=await pack(w))
    calendar = ResourceCalendar(w.service.store, clock=clock)
    resource = f"teacher:{w.ids['T1']}"
    clock.now = at(2) + timedelta(days=7)
    await start_session(admin, current.id)
    await complete_session(admin, current.id, "ok")
    owners = {i.owner for i in await calendar.claims_of(w.org, resource, old.id)}
    assert owners == set()  # ended five days ago: pruned
    assert await calendar.claims_of(w.org, resource, current.id)  # recent: kept
