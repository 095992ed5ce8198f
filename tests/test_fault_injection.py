"""Every multi-write operation, with each of its store writes failing in turn.

For each operation the test runs it once to count its writes, then once per write with that
write failing (the error a lost MongoDB connection raises). After each failure the store must
be as it was before the operation -- every document a user can see, audit entries, jobs,
messages, calendar claims; only versions and update times may have moved -- or the operation
must have completed anyway (a write whose loss a background job repairs, such as a job's
"queued" mark, which reconcile restores).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from app.platform.errors import AppError
from app.tutoring.billing import create_entitlement
from app.tutoring.scheduling.booking import reschedule_session
from app.tutoring.scheduling.payments import record_payment_failed, record_payment_succeeded
from app.tutoring.scheduling.retry import retry_session_payment
from app.tutoring.scheduling.transitions import (
    cancel_session,
    complete_session,
    mark_no_show,
    start_session,
)
from tests.booking_world import at, book, pack
from tests.faults import Faults, InjectedFault, diff, raw_state, restore, snapshot
from tests.world import NOW

Setup = Callable[[Any], Awaitable[dict[str, Any]]]
Op = Callable[[Any, dict[str, Any]], Awaitable[Any]]
Done = Callable[[Any, dict[str, Any]], Awaitable[None]]


async def _session(world, ids, key="session"):
    system = await world.system()
    return (await system.internal_state("session", ids[key]))["data"]


# -- operations ---------------------------------------------------------------------------


async def setup_pack(world):
    return {"pack": await pack(world, credits=4)}


async def book_with_pack(world, ids):
    g1 = await world.as_role("guardian")
    return await book(g1, world, at(2), entitlement=ids["pack"])


async def booked_with_pack(world, ids):
    admin = await world.as_role("admin")
    page = await admin.query("session", where={"startTime": at(2)})
    assert [s.get("status") for s in page.items] == ["scheduled"]
    pack_state = await (await world.system()).internal_state("entitlement", ids["pack"])
    assert pack_state["internal"].get("reserved") == [page.items[0].id]


async def setup_nothing(world):
    return {}


async def book_without_pack(world, ids):
    g1 = await world.as_role("guardian")
    return await book(g1, world, at(2))


async def booked_without_pack(world, ids):
    admin = await world.as_role("admin")
    page = await admin.query("session", where={"startTime": at(2)})
    assert [s.get("status") for s in page.items] == ["pending_payment"]
    payment = await admin.get("payment", page.items[0].get("paymentId"))
    assert payment is not None and payment.get("sessionId") == page.items[0].id


async def setup_pending(world):
    g1 = await world.as_role("guardian")
    session = await book(g1, world, at(2))
    return {"session": session.id, "payment": session.get("paymentId")}


async def pay(world, ids):
    return await record_payment_succeeded(await world.as_role("admin"), ids["payment"], "psp-1")


async def paid(world, ids):
    session = await _session(world, ids)
    assert session["status"] == "scheduled"
    admin = await world.as_role("admin")
    assert (await admin.get("payment", ids["payment"])).get("status") == "paid"


async def setup_pending_expired(world):
    ids = await setup_pending(world)
    world.service.clock.advance(minutes=61)  # the hold ended: success must claim again
    return ids


async def fail_payment(world, ids):
    return await record_payment_failed(await world.as_role("admin"), ids["payment"], "declined")


async def payment_failed(world, ids):
    admin = await world.as_role("admin")
    assert (await admin.get("payment", ids["payment"])).get("status") == "failed"


async def create_pack(world, ids):
    admin = await world.as_role("admin")
    data = {
        "guardianId": world.ids["G1"],
        "studentId": world.ids["S1"],
        "totalCredits": 5,
        "expiresAt": NOW + timedelta(days=30),
    }
    return await create_entitlement(admin, data)


async def pack_created(world, ids):
    admin = await world.as_role("admin")
    page = await admin.query("entitlement", where={"totalCredits": 5})
    assert len(page.items) == 1
    jobs = await world.service.jobs.for_refs(admin, [page.items[0].id])
    assert len(jobs) == 3  # two warnings and the expiry


async def setup_scheduled(world):
    ids = await setup_pack(world)
    g1 = await world.as_role("guardian")
    ids["session"] = (await book(g1, world, at(2), entitlement=ids["pack"])).id
    return ids


async def reschedule(world, ids):
    return await reschedule_session(await world.as_role("guardian"), ids["session"], at(26))


async def rescheduled(world, ids):
    session = await _session(world, ids)
    assert session["startTime"] == at(26) and session["rescheduleCount"] == 1


async def cancel(world, ids):
    return await cancel_session(await world.as_role("guardian"), ids["session"], "ill")


async def cancelled(world, ids):
    assert (await _session(world, ids))["status"] == "cancelled"


async def setup_in_progress(world):
    ids = await setup_scheduled(world)
    world.service.clock.now = at(2) - timedelta(minutes=5)
    await start_session(await world.as_role("teacher"), ids["session"])
    return ids


async def complete(world, ids):
    return await complete_session(await world.as_role("teacher"), ids["session"], "good work")


async def completed(world, ids):
    assert (await _session(world, ids))["status"] == "completed"
    pack_state = await (await world.system()).internal_state("entitlement", ids["pack"])
    assert pack_state["data"]["remainingCredits"] == 3


async def setup_missed(world):
    ids = await setup_scheduled(world)
    world.service.clock.now = at(2) + timedelta(minutes=20)
    return ids


async def no_show(world, ids):
    return await mark_no_show(await world.as_role("teacher"), ids["session"])


async def marked_no_show(world, ids):
    assert (await _session(world, ids))["status"] == "no_show"


async def setup_failed(world):
    ids = await setup_pending(world)
    await fail_payment(world, ids)
    return ids


async def retry(world, ids):
    return await retry_session_payment(await world.as_role("guardian"), ids["session"])


async def retried(world, ids):
    session = await _session(world, ids)
    assert session["status"] == "pending_payment" and session["paymentId"] != ids["payment"]
    admin = await world.as_role("admin")
    new = await admin.get("payment", session["paymentId"])
    assert new.get("status") == "pending" and new.get("sessionId") == ids["session"]
    assert (await admin.get("payment", ids["payment"])).get("status") == "failed"


async def setup_retried(world):
    """The first payment, still pending, replaced by a retry's (and so voided)."""
    ids = await setup_pending(world)
    session = await retry_session_payment(await world.as_role("guardian"), ids["session"])
    return {**ids, "second": session.get("paymentId")}


async def pay_second(world, ids):
    admin = await world.as_role("admin")
    return await record_payment_succeeded(admin, ids["second"], "psp-2")


async def paid_by_second(world, ids):
    session = await _session(world, ids)
    assert session["status"] == "scheduled" and session["paymentId"] == ids["second"]


async def pay_first_late(world, ids):
    """The voided first payment is paid after all: it schedules the session, and the
    retry's payment is voided."""
    return await pay(world, ids)


async def paid_late(world, ids):
    await paid(world, ids)
    admin = await world.as_role("admin")
    assert (await admin.get("payment", ids["second"])).get("status") == "failed"


async def setup_paid_by_second(world):
    ids = await setup_retried(world)
    await pay_second(world, ids)
    return ids


async def refund_due(world, ids):
    admin = await world.as_role("admin")
    flagged = await admin.get("payment", ids["payment"])
    assert flagged.get("status") == "paid" and flagged.get("refundDue") is True


async def setup_cancelled_pending(world):
    ids = await setup_pending(world)
    await cancel(world, ids)
    return ids


async def setup_paid(world):
    ids = await setup_pending(world)
    await pay(world, ids)
    return ids


async def cancelled_and_refund_due(world, ids):
    await cancelled(world, ids)
    await refund_due(world, ids)


CASES = {
    "book with a pack": (setup_pack, book_with_pack, booked_with_pack),
    "book without a pack": (setup_nothing, book_without_pack, booked_without_pack),
    "payment succeeded within the hold": (setup_pending, pay, paid),
    "payment succeeded after the hold": (setup_pending_expired, pay, paid),
    "payment failed": (setup_pending, fail_payment, payment_failed),
    "pack creation": (setup_nothing, create_pack, pack_created),
    "reschedule": (setup_scheduled, reschedule, rescheduled),
    "cancel a scheduled session": (setup_scheduled, cancel, cancelled),
    "cancel a pending session": (setup_pending, cancel, cancelled),
    "completion": (setup_in_progress, complete, completed),
    "no-show": (setup_missed, no_show, marked_no_show),
    "retry a failed payment": (setup_failed, retry, retried),
    "retry a pending payment": (setup_pending, retry, retried),
    "the retry's payment succeeded": (setup_retried, pay_second, paid_by_second),
    "the replaced payment succeeded first": (setup_retried, pay_first_late, paid_late),
    "the replaced payment succeeded second": (setup_paid_by_second, pay, refund_due),
    "payment succeeded after cancellation": (setup_cancelled_pending, pay, refund_due),
    "cancel a paid session": (setup_paid, cancel, cancelled_and_refund_due),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_failing_write_leaves_nothing_half_done(w, case):
    setup, op, done = CASES[case]
    faults = Faults()
    faults.install(w.service.store)
    ids = await setup(w)
    store = w.service.store
    before_raw, before = raw_state(store), snapshot(store)
    clock_at = w.service.clock.now

    faults.reset()
    await op(w, ids)
    await done(w, ids)
    steps = list(faults.writes)
    assert steps, "the operation writes nothing?"

    for k in range(1, len(steps) + 1):
        restore(store, before_raw)
        w.service.clock.now = clock_at
        faults.reset(fail_at=k)
        where = f"{case}: write {k} of {len(steps)} ({' '.join(steps[k - 1])})"
        try:
            await op(w, ids)
        except (InjectedFault, AppError) as exc:
            faults.reset()
            after = snapshot(store)
            assert after == before, f"{where}: failed with {exc!r} and left\n" + "\n".join(
                diff(before, after)
            )
        else:
            faults.reset()
            await done(w, ids)  # the lost write was not needed, or is repaired later
