"""Every interleaving of a session's payment events, over the domain functions.

The events: the provider reports the first payment failed (``fail``) or paid (``pay_first``),
the guardian retries (``retry``, which makes a second payment), the provider reports that
second payment paid (``pay_second``), the hold-expiry job lapses the session (``lapse``: the
clock moves past the hold, then what the job runs), and the guardian cancels (``cancel``).
Each run starts from the same session awaiting payment (the store restored), and after it the
books must balance (``balanced``): a scheduled session counts exactly one paid payment -- its
``paymentId`` -- and holds its slot for good with one set of reminders; a cancelled one counts
none and holds nothing; one still awaiting payment has no paid payment at all; every other
paid payment is flagged ``refundDue`` with its reason, and nothing is left open to pay for a
session that no longer awaits payment. Refusals (``INVALID_TRANSITION`` and the like) are fine;
anything else is not.

Runs: every order of five events one after another, and every pair of events (after no
retry, and after one) started together with one of them delayed by 0..21 event-loop turns,
plus all six at once with seeded random delays. The in-memory store yields to the event loop
on every call, so these runs do interleave the operations' reads and writes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import timedelta

import pytest

from app.platform.calendar import ResourceCalendar
from app.platform.errors import AppError
from app.tutoring.jobs.schedule import REMINDER
from app.tutoring.scheduling.context import student_resource, teacher_resource
from app.tutoring.scheduling.payments import record_payment_failed, record_payment_succeeded
from app.tutoring.scheduling.retry import retry_session_payment
from app.tutoring.scheduling.transitions import cancel_session, lapse_hold
from tests.booking_world import at, book
from tests.faults import raw_state, restore

EVENTS = ("fail", "retry", "pay_first", "pay_second", "lapse", "cancel")


class Run:
    """One scenario's session and payments, and the events acting on them."""

    def __init__(self, w, session_id: str, first: str, hold) -> None:
        self.w, self.session_id, self.first, self.hold = w, session_id, first, hold
        self.second: str | None = None
        self.refusals: list[str] = []

    async def event(self, name: str, delay: int = 0) -> None:
        for _ in range(delay):
            await asyncio.sleep(0)
        w = self.w
        try:
            if name == "fail":
                await record_payment_failed(await w.as_role("admin"), self.first, "declined")
            elif name == "retry":
                retried = await retry_session_payment(await w.as_role("guardian"), self.session_id)
                self.second = retried.get("paymentId")
            elif name == "pay_first":
                await record_payment_succeeded(await w.as_role("admin"), self.first, "psp-1")
            elif name == "pay_second":
                if self.second is not None:
                    await record_payment_succeeded(await w.as_role("admin"), self.second, "psp-2")
            elif name == "lapse":
                clock = w.service.clock
                clock.now = max(clock.now, self.hold + timedelta(minutes=1))
                await lapse_hold(await w.system(), self.session_id)
            elif name == "cancel":
                await cancel_session(await w.as_role("guardian"), self.session_id, "plans")
            else:
                raise AssertionError(name)
        except AppError as exc:
            self.refusals.append(f"{name}: {exc.code}")


@pytest.fixture
async def start(w, clock):
    """A fresh run from the same session awaiting payment, as many times as needed."""
    session = await book(await w.as_role("guardian"), w, at(2))
    system = await w.system()
    hold = (await system.internal_state("session", session.id))["data"]["holdExpiresAt"]
    saved, now = raw_state(w.service.store), clock.now

    def fresh() -> Run:
        restore(w.service.store, saved)
        clock.now = now
        return Run(w, session.id, session.get("paymentId"), hold)

    return fresh


async def balanced(run: Run, label: str) -> str:
    """Checks the books (see the module's docstring); returns the session's status."""
    w, sid = run.w, run.session_id
    system = await w.system()
    session = (await system.internal_state("session", sid))["data"]
    payments = {
        p.id: p.data
        for p in (await system.query("payment", where={"sessionId": sid}, first=100)).items
    }
    paid = {i for i, p in payments.items() if p["status"] == "paid"}
    counting = {i for i in paid if not payments[i].get("refundDue")}
    still_open = {i for i, p in payments.items() if p["status"] in ("pending", "processing")}
    calendar = ResourceCalendar(w.service.store, clock=w.service.clock)
    claims = []
    for resource in (
        teacher_resource(session["teacherId"]),
        student_resource(session["studentId"]),
    ):
        claims += await calendar.claims_of(w.org, resource, sid)
    status = session["status"]
    where = f"{label}: {status}, payments {payments}, refusals {run.refusals}"
    for i in paid - counting:
        assert payments[i].get("refundReason"), where
    assert not any(payments[i].get("refundDue") for i in still_open), where
    if status == "scheduled":
        assert counting == {session["paymentId"]}, where
        assert not still_open, where
        assert len(claims) == 2 and all(c.expires_at is None for c in claims), where
        jobs = await w.service.jobs.for_refs(await w.as_role("admin"), [sid])
        assert len([j for j in jobs if j["type"] == REMINDER]) == 2, where
    elif status == "cancelled":
        assert not counting and not still_open and not claims, where
    else:
        assert status == "pending_payment", where
        assert not paid, where  # a success always schedules the session or is flagged
        assert session["paymentId"] in payments, where
        assert still_open <= {session["paymentId"]}, where
        assert len(claims) == 2, where
        assert all(c.expires_at == session["holdExpiresAt"] for c in claims), where
    return status


async def test_every_order_of_five_events(start):
    outcomes = set()
    for order in itertools.permutations(("fail", "retry", "pay_first", "pay_second", "lapse")):
        run = start()
        for name in order:
            await run.event(name)
        outcomes.add(await balanced(run, " -> ".join(order)))
    assert outcomes == {"scheduled", "cancelled"}


async def test_specific_orders_end_where_they_should(start):
    expected = {
        ("fail", "retry", "pay_second"): "scheduled",
        ("retry", "pay_first", "pay_second"): "scheduled",  # the old link, paid, counts
        ("fail", "retry", "lapse", "pay_second"): "cancelled",
        ("fail", "pay_first"): "pending_payment",  # refused: a failure is final
        ("retry", "cancel", "pay_first", "pay_second"): "cancelled",
        ("lapse", "retry", "pay_first"): "cancelled",
    }
    for order, status in expected.items():
        run = start()
        for name in order:
            await run.event(name)
        assert await balanced(run, " -> ".join(order)) == status, order


PAIRS = list(itertools.combinations_with_replacement(EVENTS, 2))
DELAYS = (0, 1, 2, 3, 5, 8, 13, 21)


@pytest.mark.parametrize("retried_first", [False, True], ids=["no retry", "after a retry"])
async def test_every_pair_started_together(start, retried_first):
    outcomes = set()
    for a, b in PAIRS:
        for delay, late in itertools.product(DELAYS, (0, 1)):
            run = start()
            if retried_first:
                await run.event("retry")
            delays = (delay, 0) if late == 0 else (0, delay)
            await asyncio.gather(run.event(a, delays[0]), run.event(b, delays[1]))
            label = (
                f"{'retry, then ' if retried_first else ''}{a} (+{delays[0]}) || {b} (+{delays[1]})"
            )
            outcomes.add(await balanced(run, label))
    assert outcomes == {"scheduled", "cancelled", "pending_payment"}


async def test_everything_at_once(start):
    rng = random.Random(12)
    for n in range(40):
        run = start()
        names = list(EVENTS)
        rng.shuffle(names)
        await asyncio.gather(*(run.event(name, rng.randrange(25)) for name in names))
        await balanced(run, f"run {n}: {names}")


async def test_two_successes_of_one_session_schedule_it_once(start):
    for delay in DELAYS:
        run = start()
        await run.event("retry")  # the first payment, still pending, is replaced
        await asyncio.gather(run.event("pay_first"), run.event("pay_second", delay))
        assert await balanced(run, f"delay {delay}") == "scheduled"
        system = await run.w.system()
        flags = [
            (await system.internal_state("payment", p))["data"].get("refundDue")
            for p in (run.first, run.second)
        ]
        assert sorted(flags) == [False, True]
