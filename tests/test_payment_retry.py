"""Failed payment recovery over the domain functions: retrying a session's payment, and
successes that cannot count (a second one, or one after the session lapsed or was cancelled)
being recorded with ``refundDue``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.billing import create_payment
from app.tutoring.scheduling.payments import record_payment_failed, record_payment_succeeded
from app.tutoring.scheduling.retry import retry_session_payment
from app.tutoring.scheduling.transitions import cancel_session, lapse_hold
from tests.booking_world import at, book, code_of


async def _pending(w):
    """A session of G1's child S1 with T1, awaiting payment (booked now, held 60 min)."""
    session = await book(await w.as_role("guardian"), w, at(2), minutes=90)
    return session.id, session.get("paymentId")


async def _state(w, slug, entity_id):
    return (await (await w.system()).internal_state(slug, entity_id))["data"]


async def test_retry_after_a_failure_gives_the_session_a_new_payment(w, clock):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    hold = (await _state(w, "session", session_id))["holdExpiresAt"]
    clock.advance(minutes=10)
    await record_payment_failed(admin, first, "card declined")

    retried = await retry_session_payment(g1, session_id)
    second = retried.get("paymentId")
    assert second != first and retried.get("status") == "pending_payment"
    assert retried.get("holdExpiresAt") == hold  # never extended
    new = await g1.get("payment", second)
    assert (new.get("status"), new.get("amount"), new.get("currency")) == ("pending", 75.0, "USD")
    assert new.get("sessionId") == session_id and new.get("refundDue") is False
    old = await g1.get("payment", first)
    assert old.get("status") == "failed" and old.get("failureReason") == "card declined"

    # The failed payment stays failed, and says what to do instead.
    with pytest.raises(AppError) as err:
        await record_payment_succeeded(admin, first)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert f'retrySessionPayment(id: "{session_id}")' in err.value.message

    paid = await record_payment_succeeded(admin, second, "psp-2")
    assert paid.get("status") == "paid" and paid.get("refundDue") is False
    session = await g1.get("session", session_id)
    assert session.get("status") == "scheduled" and session.get("paymentId") == second


async def test_retrying_a_pending_payment_voids_it_and_a_late_success_still_counts_once(w):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    second = (await retry_session_payment(g1, session_id)).get("paymentId")
    voided = await g1.get("payment", first)
    assert voided.get("status") == "failed" and second in voided.get("failureReason")

    # The guardian had paid the old link after all: the money counts for the session...
    late = await record_payment_succeeded(admin, first, "psp-old")
    assert late.get("status") == "paid" and late.get("refundDue") is False
    assert late.get("failureReason") is None
    session = await g1.get("session", session_id)
    assert session.get("status") == "scheduled" and session.get("paymentId") == first
    # ...and the retry's payment, no longer to be paid, is voided; if it is paid anyway, the
    # money is to be refunded.
    assert (await g1.get("payment", second)).get("status") == "failed"
    twice = await record_payment_succeeded(admin, second, "psp-new")
    assert twice.get("status") == "paid" and twice.get("refundDue") is True
    assert first in twice.get("refundReason")
    assert (await g1.get("session", session_id)).get("paymentId") == first


async def test_a_superseded_payment_paid_after_the_retry_succeeded_is_refund_due(w):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    second = (await retry_session_payment(g1, session_id)).get("paymentId")
    await record_payment_succeeded(admin, second)
    late = await record_payment_succeeded(admin, first)
    assert late.get("refundDue") is True and second in late.get("refundReason")
    session = await g1.get("session", session_id)
    assert session.get("status") == "scheduled" and session.get("paymentId") == second
    again = await record_payment_succeeded(admin, first)  # idempotent, still flagged once
    assert again.get("refundDue") is True and again.get("paidAt") == late.get("paidAt")


async def test_a_second_payment_created_by_an_admin_counts_once(w):
    admin = await w.as_role("admin")
    session_id, first = await _pending(w)
    extra = await create_payment(
        admin, {"guardianId": w.ids["G1"], "amount": 75, "sessionId": session_id}
    )
    await record_payment_succeeded(admin, extra.id)
    assert (await _state(w, "session", session_id))["paymentId"] == extra.id
    assert (await admin.get("payment", first)).get("status") == "failed"  # voided
    flagged = await record_payment_succeeded(admin, first)
    assert flagged.get("refundDue") is True


async def test_success_after_the_hold_lapsed_is_refund_due(w, clock):
    admin = await w.as_role("admin")
    session_id, first = await _pending(w)
    clock.advance(minutes=61)
    await lapse_hold(await w.system(), session_id)  # what the hold-expiry job runs
    assert (await admin.get("payment", first)).get("status") == "failed"
    late = await record_payment_succeeded(admin, first, "psp-late")
    assert late.get("status") == "paid" and late.get("refundDue") is True
    assert "cancelled" in late.get("refundReason")
    assert (await _state(w, "session", session_id))["status"] == "cancelled"


async def test_success_after_the_hold_with_the_slot_taken_is_refund_due(w, clock):
    admin = await w.as_role("admin")
    session_id, first = await _pending(w)
    clock.advance(minutes=61)
    await book(admin, w, at(2), student="S2")  # the released slot is taken
    late = await record_payment_succeeded(admin, first)
    assert late.get("refundDue") is True and "slot" in late.get("refundReason")
    assert (await _state(w, "session", session_id))["status"] == "cancelled"


async def test_who_may_retry(w):
    session_id, _ = await _pending(w)
    g2 = await w.as_user("u-g2", "guardian")
    assert await code_of(retry_session_payment(g2, session_id)) == "NOT_FOUND"
    t1 = await w.as_role("teacher")
    assert await code_of(retry_session_payment(t1, session_id)) == "FORBIDDEN"
    t2 = await w.as_user("u-t2", "teacher")
    assert await code_of(retry_session_payment(t2, session_id)) == "NOT_FOUND"
    assert await code_of(retry_session_payment(await w.system(), session_id)) == "FORBIDDEN"
    admin = await retry_session_payment(await w.as_role("admin"), session_id)
    assert admin.get("status") == "pending_payment"


async def test_when_a_retry_is_refused(w, clock):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    await record_payment_succeeded(admin, first)
    assert await code_of(retry_session_payment(g1, session_id)) == "INVALID_TRANSITION"

    held_id = (await book(g1, w, at(26))).id
    held_payment = (await _state(w, "session", held_id))["paymentId"]
    system = await w.system()
    await system.atomic_update(
        "payment", held_payment, condition={}, update={"$set": {"data.status": "processing"}}
    )
    with pytest.raises(AppError) as err:
        await retry_session_payment(g1, held_id)
    assert err.value.code is ErrorCode.INVALID_TRANSITION and "processed" in err.value.message

    late_id = (await book(g1, w, at(50))).id
    clock.advance(minutes=60)  # the hold has ended (the lapse job has not run yet)
    with pytest.raises(AppError) as err:
        await retry_session_payment(g1, late_id)
    assert err.value.code is ErrorCode.SCHEDULING_RULE and "book" in err.value.message
    cancelled = (await book(g1, w, at(28))).id
    await cancel_session(g1, cancelled, "no")
    assert await code_of(retry_session_payment(g1, cancelled)) == "INVALID_TRANSITION"


async def test_cancel_voids_every_open_payment_of_the_session(w):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    second = (await retry_session_payment(g1, session_id)).get("paymentId")
    await cancel_session(g1, session_id, "plans changed")
    for payment_id in (first, second):
        assert (await admin.get("payment", payment_id)).get("status") == "failed"
    flagged = await record_payment_succeeded(admin, second)
    assert flagged.get("refundDue") is True


async def test_a_failure_of_a_superseded_payment_leaves_the_session_alone(w, clock):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    before = await _state(w, "session", session_id)
    second = (await retry_session_payment(g1, session_id)).get("paymentId")
    await record_payment_failed(admin, first, "late decline")  # already voided: no change
    assert (await admin.get("payment", first)).get("failureReason").startswith("Replaced")
    after = await _state(w, "session", session_id)
    assert after["paymentId"] == second and after["holdExpiresAt"] == before["holdExpiresAt"]


async def test_refunds_due_are_listed_for_admins_and_the_guardian(w):
    admin, g1 = await w.as_role("admin"), await w.as_role("guardian")
    session_id, first = await _pending(w)
    second = (await retry_session_payment(g1, session_id)).get("paymentId")
    await record_payment_succeeded(admin, second)
    await record_payment_succeeded(admin, first)
    due = await admin.query("payment", where={"refundDue": True})
    assert [p.id for p in due.items] == [first]
    assert [p.id for p in (await g1.query("payment", where={"refundDue": True})).items] == [first]
    g2 = await w.as_user("u-g2", "guardian")
    assert (await g2.query("payment", where={"refundDue": True})).items == []


async def test_hold_is_not_extended_by_a_failure_or_a_retry(w, clock):
    g1, admin = await w.as_role("guardian"), await w.as_role("admin")
    session_id, first = await _pending(w)
    clock.advance(minutes=50)
    await record_payment_failed(admin, first, "declined")
    await retry_session_payment(g1, session_id)
    session = await _state(w, "session", session_id)
    assert session["holdExpiresAt"] == clock.now + timedelta(minutes=10)


async def test_a_failure_shortens_the_hold_only_when_the_setting_was_lowered(w, clock):
    from app.tutoring.settings import update_settings

    admin = await w.as_role("admin")
    session_id, first = await _pending(w)
    await update_settings(admin, {"paymentHoldMinutes": 15})
    admin = await w.as_role("admin")
    clock.advance(minutes=5)
    await record_payment_failed(admin, first, "declined")
    session = await _state(w, "session", session_id)
    assert session["holdExpiresAt"] == clock.now + timedelta(minutes=15)
    clock.advance(minutes=16)  # the shortened hold is over: the slot is free again
    assert (await book(admin, w, at(2), student="S2")).get("startTime") == at(2)
