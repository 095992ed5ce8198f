"""The six entity types. Every field a mask can hide is nullable and is read from the
entity's masked data; every relation asks the engine whether the role may follow it and
resolves through a DataLoader, whose batch goes through the secure entity service."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from app.graphql.permissions import relation_allowed
from app.graphql.resolvers import connection
from app.graphql.types.base import (
    Connection,
    Node,
    entity_object,
    masked,
    objects_of,
)
from app.graphql.types.local import local
from app.platform.entities import Entity, Link, OrderKey


def to_one(slug: str, link: str):
    """A link followed through the type's DataLoader: null when the link field is hidden,
    the role cannot read ``slug``, or the target is outside the caller's scope."""

    async def resolve(root: Any, info: Info) -> Any:
        # Inlined (this runs for every row of a page): relation_allowed + load_one + wrap.
        context = info.context
        target = root.entity.data.get(link)
        loader = context.loaders.readable(slug)
        if loader is None or not isinstance(target, str):
            return None
        entity = await loader.load(target)
        if entity is None:
            return None
        context.limits.charge(1)
        return context.loaders.node(NODE_TYPES[slug], entity)

    return strawberry.field(resolver=resolve)


@strawberry.enum
class SessionStatus(Enum):
    PENDING_PAYMENT = "pending_payment"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


@strawberry.enum
class PaymentStatus(Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"


@strawberry.enum
class EntitlementStatus(Enum):
    ACTIVE = "active"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@strawberry.type(description="A weekly window, read in the teacher's time zone.")
class AvailabilityWindow:
    dayOfWeek: int = strawberry.field(description="0 = Sunday ... 6 = Saturday")
    startHour: int
    startMinute: int
    endHour: int = strawberry.field(description="24 means midnight at the end of the day")
    endMinute: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AvailabilityWindow:
        return cls(
            dayOfWeek=d["dayOfWeek"],
            startHour=d["startHour"],
            startMinute=d.get("startMinute", 0),
            endHour=d["endHour"],
            endMinute=d.get("endMinute", 0),
        )


@strawberry.type
class BillingAddress:
    street: str | None
    city: str | None
    postalCode: str | None
    country: str | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BillingAddress:
        return cls(
            street=d.get("street"),
            city=d.get("city"),
            postalCode=d.get("postalCode"),
            country=d.get("country"),
        )


@strawberry.type
class RecurringSchedule:
    dayOfWeek: int
    hour: int
    minute: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecurringSchedule:
        return cls(dayOfWeek=d["dayOfWeek"], hour=d["hour"], minute=d.get("minute", 0))


@entity_object
@strawberry.type(description="A tutor who conducts sessions")
class Teacher(Node):
    name: str | None = masked("name")
    email: str | None = masked("email")
    phone: str | None = masked("phone")
    subjects: list[str] | None = masked("subjects")
    availability: list[AvailabilityWindow] | None = masked(
        "availability", objects_of(AvailabilityWindow)
    )
    hourlyRate: float | None = masked("hourlyRate")
    bio: str | None = masked("bio")
    userId: str | None = masked("userId")
    timezone: str | None = masked("timezone", description="IANA name; the org's when null")


@entity_object
@strawberry.type(description="A learner receiving tutoring")
class Student(Node):
    name: str | None = masked("name")
    grade: str | None = masked("grade")
    subjects: list[str] | None = masked("subjects")
    notes: str | None = masked("notes", description="Internal notes")
    preferredTeacherId: strawberry.ID | None = masked("preferredTeacherId")
    guardianId: strawberry.ID | None = masked("guardianId")

    guardian: Guardian | None = to_one("guardian", "guardianId")

    preferredTeacher: Teacher | None = to_one("teacher", "preferredTeacherId")

    @strawberry.field(description="Newest first.")
    async def sessions(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Session] | None:
        if not relation_allowed(info, "session"):
            return None
        newest_first = [OrderKey("startTime", descending=True)]
        link = Link("studentId", self.entity)
        return await connection(
            info, "session", Session, None, None, newest_first, first, after, last, before, link
        )


@entity_object
@strawberry.type(description="Parent or guardian responsible for payment and communication")
class Guardian(Node):
    name: str | None = masked("name")
    email: str | None = masked("email")
    phone: str | None = masked("phone")
    whatsappNumber: str | None = masked("whatsappNumber")
    billingAddress: BillingAddress | None = masked("billingAddress", objects_of(BillingAddress))
    paymentMethod: str | None = masked("paymentMethod")
    userId: str | None = masked("userId")

    @strawberry.field
    async def students(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Student] | None:
        if not relation_allowed(info, "student"):
            return None
        page = (first, after, last, before)
        link = Link("guardianId", self.entity)
        return await connection(info, "student", Student, None, None, [], *page, link)


@entity_object
@strawberry.type(description="A scheduled tutoring session")
class Session(Node):
    teacherId: strawberry.ID | None = masked("teacherId")
    studentId: strawberry.ID | None = masked("studentId")
    guardianId: strawberry.ID | None = masked("guardianId")
    startTime: datetime | None = masked("startTime")
    durationMinutes: int | None = masked("duration", description="Length in minutes")
    duration: int | None = masked(
        "duration", description="Minutes", deprecation_reason="Use durationMinutes."
    )
    subject: str | None = masked("subject")
    meetingLink: str | None = masked("meetingLink")
    status: SessionStatus | None = masked("status")
    entitlementId: strawberry.ID | None = masked("entitlementId")
    paymentId: strawberry.ID | None = masked("paymentId")
    teacherNotes: str | None = masked("teacherNotes")
    guardianNotes: str | None = masked("guardianNotes")
    reportSubmitted: bool | None = masked("reportSubmitted")
    reportContent: str | None = masked(
        "reportContent", description="Guardians read it once it is shared (reportShared)"
    )
    reportShared: bool | None = masked(
        "reportShared", description="Shared with the guardian (shareSessionReport)"
    )
    reportSharedAt: datetime | None = masked("reportSharedAt")
    reportSharedBy: str | None = masked("reportSharedBy", description="The user who shared it")
    cancellationReason: str | None = masked("cancellationReason")
    cancelledBy: str | None = masked("cancelledBy")
    cancelledAt: datetime | None = masked("cancelledAt")
    rescheduleCount: int | None = masked("rescheduleCount")
    holdExpiresAt: datetime | None = masked(
        "holdExpiresAt", description="While PENDING_PAYMENT: when the slot is given back"
    )
    startedAt: datetime | None = masked("startedAt")
    completedAt: datetime | None = masked("completedAt")
    localStartTime = local("startTime")
    localReportSharedAt = local("reportSharedAt")
    localCancelledAt = local("cancelledAt")
    localHoldExpiresAt = local("holdExpiresAt")
    localStartedAt = local("startedAt")
    localCompletedAt = local("completedAt")

    teacher: Teacher | None = to_one("teacher", "teacherId")

    student: Student | None = to_one("student", "studentId")

    guardian: Guardian | None = to_one("guardian", "guardianId")

    payment: Payment | None = to_one("payment", "paymentId")

    entitlement: Entitlement | None = to_one("entitlement", "entitlementId")


@entity_object
@strawberry.type(description="A payment record for sessions or packs")
class Payment(Node):
    guardianId: strawberry.ID | None = masked("guardianId")
    amount: float | None = masked("amount")
    currency: str | None = masked("currency")
    status: PaymentStatus | None = masked("status")
    method: str | None = masked("method")
    providerReference: str | None = masked("providerReference")
    sessionId: strawberry.ID | None = masked("sessionId")
    entitlementId: strawberry.ID | None = masked("entitlementId")
    paymentLinkUrl: str | None = masked("paymentLinkUrl")
    paidAt: datetime | None = masked("paidAt")
    failedAt: datetime | None = masked("failedAt")
    failureReason: str | None = masked("failureReason")
    localPaidAt = local("paidAt")
    localFailedAt = local("failedAt")
    refundDue: bool | None = masked(
        "refundDue",
        description="true: the money was taken but no session uses it (a second success for "
        "one session, or a success after it lapsed or was cancelled, or the session was "
        "cancelled after payment); an admin refunds it",
    )
    refundReason: str | None = masked("refundReason", description="Why a refund is due")

    guardian: Guardian | None = to_one("guardian", "guardianId")

    session: Session | None = to_one("session", "sessionId")

    entitlement: Entitlement | None = to_one("entitlement", "entitlementId")


@entity_object
@strawberry.type(description="A pack of session credits")
class Entitlement(Node):
    guardianId: strawberry.ID | None = masked("guardianId")
    studentId: strawberry.ID | None = masked("studentId")
    totalCredits: int | None = masked("totalCredits")
    remainingCredits: int | None = masked("remainingCredits")
    availableCredits: int | None = masked(
        "availableCredits",
        description="Remaining credits not held by booked sessions: what can still be booked",
    )
    usedCredits: int | None = masked("usedCredits")
    expiresAt: datetime | None = masked("expiresAt")
    status: EntitlementStatus | None = masked("status")
    paymentId: strawberry.ID | None = masked("paymentId")
    subject: str | None = masked("subject")
    preferredTeacherId: strawberry.ID | None = masked("preferredTeacherId")
    recurringSchedule: RecurringSchedule | None = masked(
        "recurringSchedule", objects_of(RecurringSchedule)
    )
    localExpiresAt = local("expiresAt")

    student: Student | None = to_one("student", "studentId")

    guardian: Guardian | None = to_one("guardian", "guardianId")

    payment: Payment | None = to_one("payment", "paymentId")


NODE_TYPES: dict[str, type] = {
    "teacher": Teacher,
    "student": Student,
    "guardian": Guardian,
    "session": Session,
    "payment": Payment,
    "entitlement": Entitlement,
}


def wrap(cls: type, entity: Entity | None) -> Any:
    return cls(entity=entity) if entity is not None else None
