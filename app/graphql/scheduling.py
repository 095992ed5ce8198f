"""Booking, lifecycle and settings: each field calls one pack operation (payment outcomes and
retries: ``payments.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from app.graphql.inputs import to_data
from app.graphql.types.entities import Session
from app.graphql.types.local import local
from app.tutoring.scheduling import booking, recurring, reports, transitions
from app.tutoring.settings import read_booking_policy, read_settings, update_settings


@strawberry.type
class TimeSlot:
    start: datetime
    end: datetime
    localStart = local("start")
    localEnd = local("end")


@strawberry.type
class SkippedWeek:
    start: datetime = strawberry.field(description="The week's start time it tried, in UTC")
    code: str = strawberry.field(description="The error code the booking would have had")
    reason: str
    localStart = local("start")


@strawberry.type
class RecurringBookingResult:
    booked: list[Session]
    skipped: list[SkippedWeek]


@strawberry.type(description="Admin. Scheduling and job settings of the organization.")
class OrganizationSettings:
    organizationName: str | None
    timezone: str
    minBookingLeadMinutes: int
    rescheduleCutoffMinutes: int
    guardianCancelCutoffMinutes: int | None = strawberry.field(
        description="null: the reschedule cutoff applies"
    )
    bufferMinutes: int
    maxReschedules: int
    noShowGraceMinutes: int
    slotIntervalMinutes: int
    teacherEarlyStartMinutes: int
    autoStartSessions: bool = strawberry.field(
        description="true: sessions start automatically at their time; false: teachers start "
        "them and unstarted ones become NO_SHOW after the grace period"
    )
    paymentHoldMinutes: int
    sessionPricePerHour: float
    currency: str
    defaultDurationMinutes: int
    reminderLeadMinutes: int
    lowCreditsThreshold: int = strawberry.field(
        description="A pack at or below this many credits gets a renewal prompt"
    )
    expiryWarningDays: list[int]
    hideHourlyRateFromTeachers: bool
    maxQueryCost: int | None = strawberry.field(
        description="This organization's query cost limit; null: the service's "
        "(GRAPHQL_MAX_COST), which is also the ceiling"
    )


@strawberry.type(
    description="The booking rules every role of the organization may read (the rest of the "
    "settings is admin-only)."
)
class BookingPolicy:
    timezone: str = strawberry.field(description="The organization's time zone (IANA)")
    minBookingLeadMinutes: int = strawberry.field(description="Bookings start this far ahead")
    rescheduleCutoffMinutes: int = strawberry.field(
        description="Guardians reschedule up to this long before the start"
    )
    guardianCancelCutoffMinutes: int = strawberry.field(
        description="Guardians cancel a scheduled session up to this long before the start"
    )
    maxReschedules: int = strawberry.field(description="Reschedules per session, for guardians")
    sessionPricePerHour: float = strawberry.field(description="For a session booked without a pack")
    currency: str
    defaultDurationMinutes: int = strawberry.field(description="Length of recurring sessions")
    slotIntervalMinutes: int = strawberry.field(
        description="Start times lie on this grid of the teacher's local day"
    )


@strawberry.input
class OrganizationSettingsInput:
    """Omitted fields are left unchanged."""

    organizationName: str | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    minBookingLeadMinutes: int | None = strawberry.UNSET
    rescheduleCutoffMinutes: int | None = strawberry.UNSET
    guardianCancelCutoffMinutes: int | None = strawberry.UNSET
    bufferMinutes: int | None = strawberry.UNSET
    maxReschedules: int | None = strawberry.UNSET
    noShowGraceMinutes: int | None = strawberry.UNSET
    slotIntervalMinutes: int | None = strawberry.UNSET
    teacherEarlyStartMinutes: int | None = strawberry.UNSET
    autoStartSessions: bool | None = strawberry.UNSET
    paymentHoldMinutes: int | None = strawberry.UNSET
    sessionPricePerHour: float | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    defaultDurationMinutes: int | None = strawberry.UNSET
    reminderLeadMinutes: int | None = strawberry.UNSET
    lowCreditsThreshold: int | None = strawberry.UNSET
    expiryWarningDays: list[int] | None = strawberry.UNSET
    hideHourlyRateFromTeachers: bool | None = strawberry.UNSET
    maxQueryCost: int | None = strawberry.UNSET


@strawberry.input
class BookSessionInput:
    teacherId: strawberry.ID
    studentId: strawberry.ID
    startTime: datetime
    durationMinutes: int
    subject: str | None = None
    entitlementId: strawberry.ID | None = strawberry.field(
        default=None, description="Book against a pack; without one the session waits for payment"
    )


@strawberry.type
class SchedulingQuery:
    @strawberry.field(description="Start times bookSession accepts now, within [from, to].")
    async def availableSlots(
        self,
        info: Info,
        teacherId: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        durationMinutes: int,
        studentId: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Also leave out times this student is busy"),
        ] = None,
    ) -> list[TimeSlot] | None:
        slots = await booking.available_slots(
            info.context.entities, teacherId, from_, to, durationMinutes, studentId
        )
        return [TimeSlot(start=s.start, end=s.end) for s in slots]

    @strawberry.field(description="Admin.")
    async def organizationSettings(self, info: Info) -> OrganizationSettings | None:
        return OrganizationSettings(**await read_settings(info.context.entities))

    @strawberry.field(description="The booking rules, for every role of the organization.")
    async def bookingPolicy(self, info: Info) -> BookingPolicy:
        return BookingPolicy(**await read_booking_policy(info.context.entities))


@strawberry.type
class SchedulingMutation:
    @strawberry.mutation
    async def bookSession(self, info: Info, input: BookSessionInput) -> Session:
        request = booking.BookingRequest(
            teacher_id=input.teacherId,
            student_id=input.studentId,
            start=input.startTime,
            duration_minutes=input.durationMinutes,
            subject=input.subject,
            entitlement_id=input.entitlementId,
        )
        return Session(entity=await booking.book_session(info.context.entities, request))

    @strawberry.mutation
    async def rescheduleSession(
        self, info: Info, id: strawberry.ID, startTime: datetime
    ) -> Session:
        entity = await booking.reschedule_session(info.context.entities, id, startTime)
        return Session(entity=entity)

    @strawberry.mutation
    async def cancelSession(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> Session:
        return Session(entity=await transitions.cancel_session(info.context.entities, id, reason))

    @strawberry.mutation
    async def startSession(self, info: Info, id: strawberry.ID) -> Session:
        return Session(entity=await transitions.start_session(info.context.entities, id))

    @strawberry.mutation
    async def completeSession(self, info: Info, id: strawberry.ID, report: str) -> Session:
        entity = await transitions.complete_session(info.context.entities, id, report)
        return Session(entity=entity)

    @strawberry.mutation
    async def markNoShow(self, info: Info, id: strawberry.ID) -> Session:
        return Session(entity=await transitions.mark_no_show(info.context.entities, id))

    @strawberry.mutation(
        description="A completed session's report becomes readable by its guardian. Its "
        "teacher or an admin; idempotent."
    )
    async def shareSessionReport(self, info: Info, id: strawberry.ID) -> Session:
        return Session(entity=await reports.share_report(info.context.entities, id))

    @strawberry.mutation(description="Hides the report from the guardian again; idempotent.")
    async def unshareSessionReport(self, info: Info, id: strawberry.ID) -> Session:
        return Session(entity=await reports.unshare_report(info.context.entities, id))

    @strawberry.mutation
    async def bookRecurringSessions(
        self, info: Info, entitlementId: strawberry.ID, weeks: int
    ) -> RecurringBookingResult:
        result = await recurring.book_recurring(info.context.entities, entitlementId, weeks)
        return RecurringBookingResult(
            booked=[Session(entity=e) for e in result.booked],
            skipped=[
                SkippedWeek(start=s.start, code=s.code, reason=s.reason) for s in result.skipped
            ],
        )

    @strawberry.mutation(description="Admin. All or nothing: an invalid value changes nothing.")
    async def updateOrganizationSettings(
        self, info: Info, input: OrganizationSettingsInput
    ) -> OrganizationSettings:
        changes = to_data(input)
        return OrganizationSettings(**await update_settings(info.context.entities, changes))
