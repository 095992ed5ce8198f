"""Filter and order inputs per type, mapped onto the entity service's closed filter language.

Which of these a caller may use is not decided here: the service refuses (``FORBIDDEN``) a
filter or order on a field the caller cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields as dc_fields
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from app.graphql.types.base import OrderDirection
from app.graphql.types.entities import EntitlementStatus, PaymentStatus, SessionStatus
from app.platform.entities import OrderKey

# GraphQL filter field -> (entity field, operator); "search" is handled separately.
_OPS: dict[str, tuple[str, str]] = {
    "name": ("name", "contains"),
    "email": ("email", "eq"),
    "phone": ("phone", "eq"),
    "grade": ("grade", "eq"),
    "subject": ("subject", "eq"),
    "teaches": ("subjects", "contains"),
    "studies": ("subjects", "contains"),
    "userId": ("userId", "eq"),
    "teacherId": ("teacherId", "eq"),
    "studentId": ("studentId", "eq"),
    "guardianId": ("guardianId", "eq"),
    "sessionId": ("sessionId", "eq"),
    "entitlementId": ("entitlementId", "eq"),
    "preferredTeacherId": ("preferredTeacherId", "eq"),
    "status": ("status", "in"),
    "startsAtOrAfter": ("startTime", "gte"),
    "startsBefore": ("startTime", "lt"),
    "expiresBefore": ("expiresAt", "lt"),
    "refundDue": ("refundDue", "eq"),
}
# Flags older documents may lack: false matches "not true", absent included.
_FLAGS = frozenset({"refundDue"})


def to_query(filter_input: Any | None) -> tuple[dict[str, Any], str | None]:
    """(where, search) for the entity service; several conditions on one field are merged."""
    if filter_input is None:
        return {}, None
    where: dict[str, dict[str, Any]] = {}
    search = None
    for f in dc_fields(filter_input):
        value = getattr(filter_input, f.name)
        if value is None:
            continue
        if f.name == "search":
            search = value
            continue
        field, op = _OPS[f.name]
        if f.name in _FLAGS and value is False:
            op, value = "ne", True
        if isinstance(value, list):
            value = [v.value if isinstance(v, Enum) else v for v in value]
        elif isinstance(value, Enum):
            value = value.value
        where.setdefault(field, {})[op] = value
    return where, search


@strawberry.input
class TeacherFilter:
    search: str | None = strawberry.field(default=None, description="name, email or subject")
    name: str | None = None
    email: str | None = None
    teaches: str | None = strawberry.field(default=None, description="a subject")
    userId: str | None = None


@strawberry.input
class StudentFilter:
    search: str | None = strawberry.field(default=None, description="name or grade")
    name: str | None = None
    grade: str | None = None
    studies: str | None = strawberry.field(default=None, description="a subject")
    guardianId: strawberry.ID | None = None
    preferredTeacherId: strawberry.ID | None = None


@strawberry.input
class GuardianFilter:
    search: str | None = strawberry.field(default=None, description="name, email or phone")
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    userId: str | None = None


@strawberry.input
class SessionFilter:
    search: str | None = strawberry.field(default=None, description="subject")
    status: list[SessionStatus] | None = None
    teacherId: strawberry.ID | None = None
    studentId: strawberry.ID | None = None
    guardianId: strawberry.ID | None = None
    subject: str | None = None
    startsAtOrAfter: datetime | None = None
    startsBefore: datetime | None = None


@strawberry.input
class PaymentFilter:
    status: list[PaymentStatus] | None = None
    guardianId: strawberry.ID | None = None
    sessionId: strawberry.ID | None = None
    entitlementId: strawberry.ID | None = None
    refundDue: bool | None = strawberry.field(
        default=None,
        description="true: payments whose money no session uses, to be refunded (admins' "
        "refund list; with status [PAID], those not refunded yet)",
    )


@strawberry.input
class EntitlementFilter:
    status: list[EntitlementStatus] | None = None
    guardianId: strawberry.ID | None = None
    studentId: strawberry.ID | None = None
    expiresBefore: datetime | None = None


def _order_input(type_name: str, fields: dict[str, str]) -> type:
    """``<Type>Order { field: <Type>OrderField!, direction: OrderDirection! = ASC }``."""
    field_enum = strawberry.enum(Enum(f"{type_name}OrderField", fields))  # type: ignore[misc]
    namespace = {
        "__annotations__": {"field": field_enum, "direction": OrderDirection},
        "direction": OrderDirection.ASC,
        "__module__": __name__,
    }
    return strawberry.input(type(f"{type_name}Order", (), namespace))


_COMMON = {"CREATED_AT": "createdAt", "UPDATED_AT": "updatedAt"}
TeacherOrder = _order_input("Teacher", {"NAME": "name", "EMAIL": "email", **_COMMON})
StudentOrder = _order_input("Student", {"NAME": "name", "GRADE": "grade", **_COMMON})
GuardianOrder = _order_input("Guardian", {"NAME": "name", "EMAIL": "email", **_COMMON})
SessionOrder = _order_input(
    "Session", {"START_TIME": "startTime", "STATUS": "status", "SUBJECT": "subject", **_COMMON}
)
PaymentOrder = _order_input("Payment", {"AMOUNT": "amount", "PAID_AT": "paidAt", **_COMMON})
EntitlementOrder = _order_input(
    "Entitlement", {"EXPIRES_AT": "expiresAt", "REMAINING_CREDITS": "remainingCredits", **_COMMON}
)


def to_order(order_by: Sequence[Any] | None) -> list[OrderKey]:
    return [
        OrderKey(o.field.value, descending=o.direction is OrderDirection.DESC)
        for o in order_by or ()
    ]
