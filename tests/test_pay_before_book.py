"""Pay before book: a session without a pack waits for its payment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.scheduling.booking import available_slots
from app.tutoring.scheduling.payments import record_payment_failed, record_payment_succeeded
from tests.booking_world import at, book


async def test_booking_without_a_pack_creates_a_pending_payment(w, clock):
    g1 = await w.as_role("guardian")
    session = await book(g1, w, at(2), minutes=90)
    assert session.get("status") == "pending_payment"
    assert session.get("holdExpiresAt") == clock.now + timedelta(minutes=60)
    payment = await g1.get("payment", session.get("paymentId"))
    assert payment.get("status") == "pending" and payment.get("amount") == 75.0
    assert payment.get("sessionId") == session.id and payment.get("guardianId") == w.ids["G1"]


async def test_payment_success_schedules_the_session(w):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    session = await book(g1, w, at(2))
    paid = await record_payment_succeeded(admin, session.get("paymentId"), "psp-42")
    assert paid.get("status") == "paid" and paid.get("providerReference") == "psp-42"
    again = await record_payment_succeeded(admin, session.get("paymentId"), "psp-42")
    assert again.get("paidAt") == paid.get("paidAt")  # idempotent
    confirmed = await g1.get("session", session.id)
    assert confirmed.get("status") == "scheduled" and confirmed.get("holdExpiresAt") is None


async def test_guardians_cannot_record_payments(w):
    g1 = await w.as_role("guardian")
    session = await book(g1, w, at(2))
    with pytest.raises(AppError) as err:
        await record_payment_succeeded(g1, session.get("paymentId"))
    assert err.value.code is ErrorCode.FORBIDDEN


async def test_failed_payment_is_final_and_frees_the_slot_after_the_hold(w, clock):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    session = await book(g1, w, at(2))
    clock.advance(minutes=10)
    failed = await record_payment_failed(admin, session.get("paymentId"), "card declined")
    assert failed.get("status") == "failed" and failed.get("failureReason") == "card declined"
    with pytest.raises(AppError) as err:
        await record_payment_succeeded(admin, session.get("paymentId"))
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    # Still held: the original hold (60 min from booking) ends before failure + 60 min.
    assert await _offered(admin, w, at(2)) is False
    with pytest.raises(AppError) as err:
        await book(admin, w, at(2), student="S2")
    assert err.value.code is ErrorCode.CONFLICT
    clock.advance(minutes=51)  # past the hold
    assert await _offered(admin, w, at(2)) is True
    taken = await book(admin, w, at(2), student="S2")
    assert taken.get("startTime") == at(2)


async def test_payment_after_a_lapsed_hold_does_not_double_book(w, clock):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    session = await book(g1, w, at(2))
    clock.advance(minutes=61)
    await book(admin, w, at(2), student="S2")  # someone else takes the released slot
    await record_payment_succeeded(admin, session.get("paymentId"), "late")
    lapsed = await admin.get("session", session.id)
    assert lapsed.get("status") == "cancelled"
    assert "payment" in lapsed.get("cancellationReason")


async def test_payment_within_the_hold_keeps_the_slot(w, clock):
    g1 = await w.as_role("guardian")
    admin = await w.as_role("admin")
    session = await book(g1, w, at(2))
    clock.advance(minutes=59)
    await record_payment_succeeded(admin, session.get("paymentId"))
    clock.advance(minutes=120)  # long after the original hold: confirmed claims do not expire
    with pytest.raises(AppError) as err:
        await book(admin, w, at(2), student="S2")
    assert err.value.code is ErrorCode.CONFLICT


async def _offered(entities, w, start) -> bool:
    slots = await available_slots(
        entities, w.ids["T1"], start - timedelta(hours=1), start + timedelta(hours=2), 60
    )
    return start in {s.start for s in slots}
