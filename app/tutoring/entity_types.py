"""The six tutoring entity types.

Differences from the spec's sketch, on purpose: times are date-times (not epoch numbers),
availability is minute-precise with ``endHour`` up to 24 and read in the teacher's time zone,
every schema rejects unknown fields, and fields that only domain operations may change
(statuses, credits, links made at booking) are declared server-owned.
"""

from __future__ import annotations

from typing import Any

from app.platform.registry import INCREASING, EntityType

_STR: dict[str, Any] = {"type": "string"}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
_EMAIL: dict[str, Any] = {"type": "string", "format": "email", "maxLength": 320}
_TEXT: dict[str, Any] = {"type": "string", "maxLength": 20000}
_ID: dict[str, Any] = {"type": "string", "minLength": 1}
_WHEN: dict[str, Any] = {"type": "string", "format": "date-time"}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "maxItems": 50}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


AVAILABILITY_WINDOW = {
    **_object(
        {
            "dayOfWeek": {"type": "integer", "minimum": 0, "maximum": 6},
            "startHour": {"type": "integer", "minimum": 0, "maximum": 23},
            "startMinute": {"type": "integer", "minimum": 0, "maximum": 59, "default": 0},
            "endHour": {"type": "integer", "minimum": 0, "maximum": 24},
            "endMinute": {"type": "integer", "minimum": 0, "maximum": 59, "default": 0},
        },
        ["dayOfWeek", "startHour", "endHour"],
    ),
    # A window that ends at or before its start would silently offer nothing (see
    # INCREASING in app/platform/registry.py).
    INCREASING: {
        "fields": [["startHour", "startMinute"], ["endHour", "endMinute"]],
        "message": "the window must end after it starts (endHour:endMinute after "
        "startHour:startMinute on the same day)",
    },
    "description": "dayOfWeek 0 = Sunday, in the teacher's time zone; endHour 24 = midnight.",
}

TEACHER = EntityType(
    slug="teacher",
    name="Teacher",
    description="A tutor who conducts sessions",
    schema=_object(
        {
            "name": _NAME,
            "email": _EMAIL,
            "phone": _STR,
            "subjects": _STRINGS,
            "availability": {"type": "array", "items": AVAILABILITY_WINDOW, "maxItems": 100},
            "hourlyRate": {"type": "number", "minimum": 0},
            "bio": _TEXT,
            "userId": _ID,
            "timezone": {"type": "string", "format": "time-zone"},
        },
        ["name", "email"],
    ),
    searchFields=("name", "email", "subjects"),
    displayConfig={
        "listFields": ["name", "email", "subjects"],
        "detailFields": ["name", "email", "phone", "subjects", "availability", "bio"],
    },
    actorLink="teacherId",
    # The orders and filters the API offers (GraphQL TeacherOrder, TeacherFilter).
    indexes=((("name", 1),), (("email", 1),)),
)

STUDENT = EntityType(
    slug="student",
    name="Student",
    description="A learner receiving tutoring",
    schema=_object(
        {
            "name": _NAME,
            "grade": _STR,
            "subjects": _STRINGS,
            "notes": _TEXT,
            "preferredTeacherId": _ID,
            "guardianId": _ID,
        },
        ["name"],
    ),
    searchFields=("name", "grade"),
    displayConfig={
        "listFields": ["name", "grade", "subjects"],
        "detailFields": ["name", "grade", "subjects", "notes", "preferredTeacherId"],
    },
    references={"guardianId": "guardian", "preferredTeacherId": "teacher"},
    indexes=((("name", 1),), (("grade", 1),)),
)

GUARDIAN = EntityType(
    slug="guardian",
    name="Guardian",
    description="Parent or guardian responsible for payment and communication",
    schema=_object(
        {
            "name": _NAME,
            "email": _EMAIL,
            "phone": {"type": "string", "minLength": 3, "maxLength": 40},
            "whatsappNumber": _STR,
            "billingAddress": _object(
                {"street": _STR, "city": _STR, "postalCode": _STR, "country": _STR}, []
            ),
            "paymentMethod": _STR,
            "userId": _ID,
        },
        ["name", "phone"],
    ),
    searchFields=("name", "email", "phone"),
    displayConfig={
        "listFields": ["name", "email", "phone"],
        "detailFields": ["name", "email", "phone", "whatsappNumber", "billingAddress"],
    },
    actorLink="guardianId",
    indexes=((("name", 1),), (("email", 1),)),
)

SESSION_STATUSES = (
    "pending_payment",
    "scheduled",
    "in_progress",
    "completed",
    "cancelled",
    "no_show",
)

SESSION = EntityType(
    slug="session",
    name="Session",
    description="A scheduled tutoring session",
    schema=_object(
        {
            "teacherId": _ID,
            "studentId": _ID,
            "guardianId": _ID,
            "startTime": _WHEN,
            "duration": {"type": "integer", "minimum": 5, "maximum": 600},
            "subject": _STR,
            "meetingLink": _STR,
            "status": {"type": "string", "enum": list(SESSION_STATUSES)},
            "entitlementId": _ID,
            "paymentId": _ID,
            "teacherNotes": _TEXT,
            "guardianNotes": _TEXT,
            "reportSubmitted": {"type": "boolean"},
            "reportContent": _TEXT,
            # Whether guardians may read reportContent (see roles.py), and who shared it when.
            "reportShared": {"type": "boolean"},
            "reportSharedAt": _WHEN,
            "reportSharedBy": _STR,
            "cancellationReason": _STR,
            "cancelledBy": _STR,
            "cancelledAt": _WHEN,
            "rescheduleCount": {"type": "integer", "minimum": 0},
            "holdExpiresAt": _WHEN,
            "startedAt": _WHEN,
            "completedAt": _WHEN,
        },
        ["teacherId", "studentId", "startTime", "duration", "status"],
    ),
    searchFields=("subject",),
    displayConfig={
        "listFields": ["startTime", "studentId", "teacherId", "status"],
        "detailFields": [
            "startTime",
            "duration",
            "subject",
            "meetingLink",
            "status",
            "teacherNotes",
        ],
    },
    references={
        "teacherId": "teacher",
        "studentId": "student",
        "guardianId": "guardian",
        "entitlementId": "entitlement",
        "paymentId": "payment",
    },
    serverOwned=(
        "teacherId",
        "studentId",
        "guardianId",
        "startTime",
        "duration",
        "status",
        "entitlementId",
        "paymentId",
        "cancellationReason",
        "cancelledBy",
        "cancelledAt",
        "rescheduleCount",
        "holdExpiresAt",
        "startedAt",
        "completedAt",
        "reportShared",
        "reportSharedAt",
        "reportSharedBy",
    ),
    indexes=(
        (("teacherId", 1), ("startTime", 1)),
        (("studentId", 1), ("startTime", 1)),
        (("guardianId", 1), ("startTime", 1)),
        (("startTime", 1),),
        (("status", 1), ("createdAt", 1)),
        (("subject", 1),),
        (("status", 1), ("startTime", 1)),
    ),
)

PAYMENT_STATUSES = ("pending", "processing", "paid", "failed", "refunded")

PAYMENT = EntityType(
    slug="payment",
    name="Payment",
    description="A payment record for sessions or packs",
    schema=_object(
        {
            "guardianId": _ID,
            "amount": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "status": {"type": "string", "enum": list(PAYMENT_STATUSES)},
            "method": _STR,
            "providerReference": _STR,
            "sessionId": _ID,
            "entitlementId": _ID,
            "paymentLinkUrl": _STR,
            "paidAt": _WHEN,
            "failedAt": _WHEN,
            "failureReason": _STR,
            # Money was taken that no session can use (a second success for one session, or
            # a success after the session lapsed or was cancelled): an admin refunds it.
            "refundDue": {"type": "boolean"},
            "refundReason": _STR,
        },
        ["guardianId", "amount", "status"],
    ),
    searchFields=(),
    displayConfig={
        "listFields": ["guardianId", "amount", "status", "paidAt"],
        "detailFields": [
            "guardianId",
            "amount",
            "currency",
            "status",
            "method",
            "providerReference",
        ],
    },
    references={"guardianId": "guardian", "sessionId": "session", "entitlementId": "entitlement"},
    serverOwned=(
        "status",
        "providerReference",
        "paidAt",
        "failedAt",
        "failureReason",
        "refundDue",
        "refundReason",
    ),
    indexes=(
        (("status", 1), ("createdAt", 1)),
        (("amount", 1),),
        (("paidAt", 1),),
        (("refundDue", 1), ("createdAt", 1)),
    ),
)

ENTITLEMENT_STATUSES = ("active", "exhausted", "expired", "cancelled")

ENTITLEMENT = EntityType(
    slug="entitlement",
    name="Entitlement",
    description="A pack of session credits",
    schema=_object(
        {
            "guardianId": _ID,
            "studentId": _ID,
            "totalCredits": {"type": "integer", "minimum": 1, "maximum": 1000},
            "remainingCredits": {"type": "integer", "minimum": 0},
            # Remaining minus those held by booked sessions (see scheduling/credits.py).
            "availableCredits": {"type": "integer"},
            "usedCredits": {"type": "integer", "minimum": 0},
            "expiresAt": _WHEN,
            "status": {"type": "string", "enum": list(ENTITLEMENT_STATUSES)},
            "paymentId": _ID,
            "subject": _STR,
            "preferredTeacherId": _ID,
            "recurringSchedule": _object(
                {
                    "dayOfWeek": {"type": "integer", "minimum": 0, "maximum": 6},
                    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                    "minute": {"type": "integer", "minimum": 0, "maximum": 59},
                },
                ["dayOfWeek", "hour"],
            ),
        },
        ["guardianId", "studentId", "totalCredits", "remainingCredits", "status"],
    ),
    searchFields=(),
    displayConfig={
        "listFields": ["studentId", "totalCredits", "remainingCredits", "status"],
        "detailFields": [
            "studentId",
            "totalCredits",
            "remainingCredits",
            "availableCredits",
            "usedCredits",
            "expiresAt",
            "status",
        ],
    },
    references={
        "guardianId": "guardian",
        "studentId": "student",
        "paymentId": "payment",
        "preferredTeacherId": "teacher",
    },
    serverOwned=("remainingCredits", "availableCredits", "usedCredits", "status"),
    indexes=(
        (("status", 1), ("createdAt", 1)),
        (("expiresAt", 1),),
        (("remainingCredits", 1),),
    ),
)

ENTITY_TYPES = (TEACHER, STUDENT, GUARDIAN, SESSION, PAYMENT, ENTITLEMENT)
