"""Booking a pack's recurring weekly slot for the coming weeks, through the same booking rule;
weeks that fail a rule are skipped and reported, not fatal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import BadUserInput, Conflict
from app.tutoring.errors import InsufficientCredits, SchedulingRule
from app.tutoring.scheduling.availability import weekday
from app.tutoring.scheduling.booking import BookingRequest, book_session
from app.tutoring.scheduling.context import scheduling
from app.tutoring.scheduling.rules import teacher_zone

MAX_WEEKS = 52


@dataclass(frozen=True)
class SkippedWeek:
    start: datetime  # in UTC, like every time the service hands out
    code: str
    reason: str


@dataclass
class RecurringResult:
    booked: list[Entity] = field(default_factory=list)
    skipped: list[SkippedWeek] = field(default_factory=list)


async def book_recurring(
    entities: ActorEntities, entitlement_id: str, weeks: int
) -> RecurringResult:
    if not 1 <= weeks <= MAX_WEEKS:
        raise BadUserInput(f"weeks must be between 1 and {MAX_WEEKS}.", {"weeks": "out of range"})
    ctx = await scheduling(entities, "recurring")
    await entities.require("entitlement", entitlement_id)
    pack = await ctx.state("entitlement", entitlement_id)
    schedule = pack.get("recurringSchedule")
    teacher_id = pack.get("preferredTeacherId")
    if not schedule or not teacher_id:
        raise BadUserInput(
            "The pack needs a recurringSchedule and a preferredTeacherId to book recurring "
            "sessions.",
            {"entitlementId": "no recurring schedule or teacher"},
        )
    teacher = await ctx.state("teacher", teacher_id)
    tz = teacher_zone(teacher, ctx.settings)
    earliest = ctx.now + timedelta(minutes=ctx.settings.minBookingLeadMinutes)
    day = earliest.astimezone(tz).date()
    while weekday(day) != schedule["dayOfWeek"]:
        day += timedelta(days=1)
    at = time(schedule["hour"], schedule.get("minute", 0))
    if datetime.combine(day, at, tzinfo=tz) < earliest:
        day += timedelta(days=7)
    result = RecurringResult()
    for week in range(weeks):
        start = datetime.combine(day + timedelta(days=7 * week), at, tzinfo=tz)
        request = BookingRequest(
            teacher_id=teacher_id,
            student_id=pack["studentId"],
            start=start,
            duration_minutes=ctx.settings.defaultDurationMinutes,
            subject=pack.get("subject"),
            entitlement_id=entitlement_id,
        )
        try:
            result.booked.append(await book_session(entities, request))
        except (SchedulingRule, Conflict, InsufficientCredits) as exc:
            # The week was computed on the teacher's clock; it leaves in UTC.
            result.skipped.append(SkippedWeek(start.astimezone(UTC), str(exc.code), exc.message))
    return result
