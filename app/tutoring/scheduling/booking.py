"""Booking, rescheduling and the slots on offer.

Order of checks in a booking: who may book for whom (the caller's own scope), then the time
rules, then the pack, and only then the atomic claims on the teacher's and the student's time
(the one step that decides races), the credit reservation, and the writes. Every write from
the claims on runs inside ``undo_on_failure``: if any of them fails, the ones before it are
taken back and nothing of the booking remains.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from app.platform.calendar import Interval
from app.platform.entities import ActorEntities, Entity
from app.platform.errors import BadUserInput, Forbidden, NotFound
from app.platform.inputs import utc_datetime
from app.platform.permissions import Action
from app.platform.undo import undo_on_failure
from app.tutoring import changes
from app.tutoring.errors import InsufficientCredits, SchedulingRule
from app.tutoring.jobs import schedule
from app.tutoring.roles import ADMIN
from app.tutoring.scheduling import credits
from app.tutoring.scheduling.availability import grid_points
from app.tutoring.scheduling.context import (
    Scheduling,
    scheduling,
    student_resource,
    teacher_resource,
)
from app.tutoring.scheduling.lifecycle import Moment, authorize
from app.tutoring.scheduling.payment_records import create_session_payment, session_price
from app.tutoring.scheduling.rules import TimeRules

MAX_SLOT_RANGE = timedelta(days=62)


@dataclass(frozen=True)
class BookingRequest:
    teacher_id: str
    student_id: str
    start: datetime
    duration_minutes: int
    subject: str | None = None
    entitlement_id: str | None = None


def _check_duration(minutes: int) -> None:
    if not 5 <= minutes <= 600:
        raise BadUserInput(
            "durationMinutes must be between 5 and 600.", {"durationMinutes": "out of range"}
        )


SANE_RANGE = timedelta(days=5 * 366)


def _aware(value: datetime, name: str, now: datetime) -> datetime:
    value = utc_datetime(value, name)
    if abs(value - now) > SANE_RANGE:
        raise BadUserInput(f"{name} must lie within five years of now.", {name: "out of range"})
    return value


async def _may_book(
    ctx: Scheduling, teacher_id: str, student_id: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Who may book for whom, decided by the engine and the pack's roles: the caller's roles
    must allow creating sessions (``FORBIDDEN`` before anything is read, so a role that never
    books learns nothing), the student and the teacher must be in the caller's scope
    (``NOT_FOUND``), and the session would have to fall inside a scope of theirs (a guardian
    books for their own children). Returns the teacher's data and the session's links.

    One read each, and no more reads before the claim: under contention the losers of a
    booking fail at the claim having done little."""
    ctx.entities.access.require("session", Action.CREATE)
    student = await ctx.reach("student", student_id)
    teacher = await ctx.reach("teacher", teacher_id)
    guardian_id = student.get("guardianId")
    if not guardian_id:
        raise BadUserInput(
            "The student has no guardian to book and pay for the session; an admin must link one.",
            {"studentId": "no guardian"},
        )
    links = {"teacherId": teacher_id, "studentId": student_id, "guardianId": guardian_id}
    await ctx.entities.may_create("session", links)
    return teacher, links


async def book_session(entities: ActorEntities, req: BookingRequest) -> Entity:
    _check_duration(req.duration_minutes)
    ctx = await scheduling(entities, "booking")
    start = _aware(req.start, "startTime", ctx.now)
    teacher, links = await _may_book(ctx, req.teacher_id, req.student_id)
    reason = TimeRules.for_teacher(teacher, ctx.settings, ctx.now).violation(
        start, req.duration_minutes
    )
    if reason:
        raise SchedulingRule(reason)
    subject = req.subject
    if req.entitlement_id:
        pack = await _usable_pack(ctx, req.entitlement_id, req.student_id)
        subject = subject or pack.get("subject")
    session_id = str(ObjectId())
    end = start + timedelta(minutes=req.duration_minutes)
    hold = (
        None if req.entitlement_id else ctx.now + timedelta(minutes=ctx.settings.paymentHoldMinutes)
    )
    async with undo_on_failure():  # any failure below takes back every write above it
        await ctx.claim(req.teacher_id, req.student_id, session_id, start, end, expires_at=hold)
        if req.entitlement_id:
            await credits.reserve(ctx.domain, req.entitlement_id, session_id, start)
        payment_id = None
        if hold is not None:  # pay before book: the session waits with a pending payment
            payment_id = await _create_payment(
                ctx, session_id, links["guardianId"], req.duration_minutes
            )
        server: dict[str, Any] = {
            **links,
            "startTime": start,
            "duration": req.duration_minutes,
            "status": "scheduled" if req.entitlement_id else "pending_payment",
            "rescheduleCount": 0,
            "entitlementId": req.entitlement_id,
            "paymentId": payment_id,
            "holdExpiresAt": hold,
        }
        created = await ctx.domain.create(
            "session",
            {"subject": subject} if subject else {},
            server_fields={k: v for k, v in server.items() if v is not None},
            entity_id=session_id,
            event=changes.BOOKED,
        )
        if hold is None:
            await schedule.session_scheduled(
                ctx.domain, session_id, dict(created.data), ctx.settings
            )
        else:
            await schedule.session_on_hold(ctx.domain, session_id, hold)
    return await _as_caller(entities, created)


async def _usable_pack(ctx: Scheduling, entitlement_id: str, student_id: str) -> dict[str, Any]:
    await ctx.entities.require("entitlement", entitlement_id)
    pack = await ctx.state("entitlement", entitlement_id)
    if pack.get("studentId") != student_id:
        raise BadUserInput(
            "This pack belongs to another student.", {"entitlementId": "another student's pack"}
        )
    linked = await ctx.domain.query("payment", where={"entitlementId": entitlement_id}, first=100)
    statuses = [p.get("status") for p in linked.items]
    if pack.get("paymentId"):
        statuses.append((await ctx.state("payment", pack["paymentId"])).get("status"))
    if statuses and "paid" not in statuses:
        raise InsufficientCredits("This pack's payment has not succeeded yet.")
    return pack


async def _create_payment(ctx: Scheduling, session_id: str, guardian_id: str, minutes: int) -> str:
    """The pending payment of a session booked without a pack (created just before it)."""
    amount = session_price(ctx.settings, minutes)
    return await create_session_payment(ctx, session_id, guardian_id, amount, ctx.settings.currency)


async def _as_caller(entities: ActorEntities, entity: Entity) -> Entity:
    """The booked session as the caller sees it (no second read)."""
    seen = await entities.view(entity)
    if seen is None:  # cannot happen for a caller that passed may_create; fail closed
        raise NotFound(entity.type, entity.id)
    return seen


async def reschedule_session(entities: ActorEntities, session_id: str, start: datetime) -> Entity:
    ctx = await scheduling(entities, "reschedule")
    start = _aware(start, "startTime", ctx.now)
    await entities.require("session", session_id)
    session = await ctx.state("session", session_id)
    roles = await ctx.roles_reaching(session_id, session)
    authorize("reschedule", roles, Moment(session, ctx.now, ctx.settings))
    if start == session["startTime"]:
        return await entities.require("session", session_id)
    if session.get("entitlementId"):
        pack = await ctx.state("entitlement", session["entitlementId"])
        if pack.get("status") not in ("active", "exhausted") or (
            pack.get("expiresAt") and pack["expiresAt"] <= start
        ):
            raise InsufficientCredits("The session's pack is not valid at the new time.")
    teacher = await ctx.state("teacher", session["teacherId"])
    rules = TimeRules.for_teacher(teacher, ctx.settings, ctx.now, enforce_lead=ADMIN not in roles)
    reason = rules.violation(start, session["duration"])
    if reason:
        raise SchedulingRule(reason)
    end = start + timedelta(minutes=session["duration"])
    old_claims = await ctx.claims_of(session, session_id)
    async with undo_on_failure():
        await ctx.claim(
            session["teacherId"], session["studentId"], session_id, start, end, move=True
        )
        moved = await ctx.domain.atomic_update(
            "session",
            session_id,
            condition={
                "data.status": "scheduled",
                "data.startTime": session["startTime"],
                "data.rescheduleCount": session.get("rescheduleCount", 0),
            },
            update={"$set": {"data.startTime": start}, "$inc": {"data.rescheduleCount": 1}},
            event=changes.RESCHEDULED,
        )
        if moved is None:
            raise SchedulingRule("The session changed meanwhile; reload it and try again.")
        ctx.revert_on_failure(
            "session",
            session_id,
            session,
            ["startTime", "rescheduleCount"],
            {"data.status": "scheduled", "data.startTime": start},
        )
        await ctx.release(old_claims)  # exactly the claims held before: never a racer's new ones
        await schedule.session_scheduled(ctx.domain, session_id, dict(moved.data), ctx.settings)
    return await entities.require("session", session_id)


@dataclass(frozen=True)
class TimeSlot:
    start: datetime
    end: datetime


class BusyTimes:
    """Merged busy blocks, searched by bisection: a 28-day scan over a teacher with a
    thousand sessions stays a few thousand cheap look-ups."""

    def __init__(self, intervals: list[Interval]) -> None:
        blocks: list[list[datetime]] = []
        for i in sorted(intervals, key=lambda i: i.start):
            if blocks and i.start <= blocks[-1][1]:
                blocks[-1][1] = max(blocks[-1][1], i.end)
            else:
                blocks.append([i.start, i.end])
        self._starts = [b[0] for b in blocks]
        self._ends = [b[1] for b in blocks]

    def clashes(self, start: datetime, end: datetime, padding: timedelta) -> bool:
        k = bisect.bisect_right(self._ends, start - padding)
        return k < len(self._starts) and self._starts[k] < end + padding


async def available_slots(
    entities: ActorEntities,
    teacher_id: str,
    start: datetime,
    end: datetime,
    duration_minutes: int,
    student_id: str | None = None,
) -> list[TimeSlot]:
    """Exactly the start times ``book_session`` would accept now (for this student, when
    given), within [start, end]; a booking may still lose a race or lack credits.

    A student's busy times (sessions with any teacher) are theirs and their guardian's: a
    ``student_id`` is accepted only from a caller who may book for that student, checked
    exactly as a booking is (``_may_book``). A teacher gets ``FORBIDDEN`` rather than a view
    of their pupil's other lessons."""
    _check_duration(duration_minutes)
    now = entities.service.clock()
    start, end = _aware(start, "from", now), _aware(end, "to", now)
    if end <= start or end - start > MAX_SLOT_RANGE:
        raise BadUserInput(
            f"'to' must be after 'from' and at most {MAX_SLOT_RANGE.days} days later.",
            {"to": "bad range"},
        )
    ctx = await scheduling(entities, "slots")
    if student_id:
        try:
            teacher, _ = await _may_book(ctx, teacher_id, student_id)
        except Forbidden:
            raise Forbidden(
                "studentId is accepted only from those who may book for that student (its "
                "guardian, an admin); leave it out to see the teacher's free times."
            ) from None
    else:
        await entities.require("teacher", teacher_id)
        teacher = await ctx.state("teacher", teacher_id)
    rules = TimeRules.for_teacher(teacher, ctx.settings, ctx.now)
    length = timedelta(minutes=duration_minutes)
    buffer = rules.buffer
    window = (start - buffer - length, end + buffer + length)
    teacher_busy = BusyTimes(
        await ctx.calendar.busy(ctx.org, [teacher_resource(teacher_id)], *window)
    )
    student_busy = BusyTimes(
        await ctx.calendar.busy(ctx.org, [student_resource(student_id)], *window)
        if student_id
        else []
    )
    slots = []
    for t in grid_points(start, end - length, rules.tz, ctx.settings.slotIntervalMinutes):
        if rules.violation(t, duration_minutes) is not None:
            continue
        if teacher_busy.clashes(t, t + length, buffer) or student_busy.clashes(
            t, t + length, timedelta(0)
        ):
            continue
        slots.append(TimeSlot(t, t + length))
    return slots
