"""Mutation inputs. They carry the spec's fields; which of them a caller may set is decided by
the write masks in the pack, not here. In update inputs an omitted field is left alone and an
explicit null clears it."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET


def to_data(value: Any) -> Any:
    """Input objects to plain data: omitted (UNSET) fields dropped, enums to their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is UNSET:
                continue
            out[f.name] = to_data(v)
        return out
    if isinstance(value, list):
        return [to_data(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


@strawberry.input
class AvailabilityWindowInput:
    dayOfWeek: int = strawberry.field(description="0 = Sunday ... 6 = Saturday")
    startHour: int
    endHour: int = strawberry.field(description="up to 24 (midnight)")
    startMinute: int = 0
    endMinute: int = 0


@strawberry.input
class BillingAddressInput:
    street: str | None = UNSET
    city: str | None = UNSET
    postalCode: str | None = UNSET
    country: str | None = UNSET


@strawberry.input
class RecurringScheduleInput:
    dayOfWeek: int
    hour: int
    minute: int = 0


@strawberry.input
class CreateTeacherInput:
    name: str
    email: str
    phone: str | None = UNSET
    subjects: list[str] | None = UNSET
    availability: list[AvailabilityWindowInput] | None = UNSET
    hourlyRate: float | None = UNSET
    bio: str | None = UNSET
    userId: str | None = UNSET
    timezone: str | None = UNSET


@strawberry.input
class UpdateTeacherInput:
    name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    subjects: list[str] | None = UNSET
    availability: list[AvailabilityWindowInput] | None = UNSET
    hourlyRate: float | None = UNSET
    bio: str | None = UNSET
    userId: str | None = UNSET
    timezone: str | None = UNSET


@strawberry.input
class CreateStudentInput:
    name: str
    grade: str | None = UNSET
    subjects: list[str] | None = UNSET
    notes: str | None = UNSET
    preferredTeacherId: strawberry.ID | None = UNSET
    guardianId: strawberry.ID | None = UNSET


@strawberry.input
class UpdateStudentInput:
    name: str | None = UNSET
    grade: str | None = UNSET
    subjects: list[str] | None = UNSET
    notes: str | None = UNSET
    preferredTeacherId: strawberry.ID | None = UNSET
    guardianId: strawberry.ID | None = UNSET


@strawberry.input
class CreateGuardianInput:
    name: str
    phone: str
    email: str | None = UNSET
    whatsappNumber: str | None = UNSET
    billingAddress: BillingAddressInput | None = UNSET
    paymentMethod: str | None = UNSET
    userId: str | None = UNSET


@strawberry.input
class UpdateGuardianInput:
    name: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    whatsappNumber: str | None = UNSET
    billingAddress: BillingAddressInput | None = UNSET
    paymentMethod: str | None = UNSET
    userId: str | None = UNSET


@strawberry.input
class UpdateSessionInput:
    subject: str | None = UNSET
    meetingLink: str | None = UNSET
    teacherNotes: str | None = UNSET
    guardianNotes: str | None = UNSET
    reportSubmitted: bool | None = UNSET
    reportContent: str | None = UNSET


@strawberry.input
class CreatePaymentInput:
    guardianId: strawberry.ID
    amount: float
    currency: str | None = UNSET
    method: str | None = UNSET
    sessionId: strawberry.ID | None = UNSET
    entitlementId: strawberry.ID | None = UNSET
    paymentLinkUrl: str | None = UNSET


@strawberry.input
class CreateEntitlementInput:
    guardianId: strawberry.ID
    studentId: strawberry.ID
    totalCredits: int
    expiresAt: datetime | None = UNSET
    paymentId: strawberry.ID | None = UNSET
    subject: str | None = UNSET
    preferredTeacherId: strawberry.ID | None = UNSET
    recurringSchedule: RecurringScheduleInput | None = UNSET
