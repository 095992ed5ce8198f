"""Who may do what in a tutoring organization: policies, scopes and masks per role.

This file is the one home of those decisions ("where is it decided that a teacher cannot see
a guardian's phone?" -- here: the teacher role has no guardian policy at all, and its session
mask leaves out ``guardianId``). Each role is installed per organization as data and may be
changed there; the README's role table mirrors this file and a test checks both.

Holes in the spec's sketch closed here: guardians read only their own guardian record,
payments and entitlements; teachers read only students they have sessions with; scopes
compare with the linked entity ids (``actor.teacherId``), not the login id; every role that
reads a type has an explicit mask, and every write goes through an explicit write mask.
"""

from __future__ import annotations

from app.platform.permissions import (
    FieldMatch,
    Policy,
    ReadMask,
    ReferencedBy,
    RoleDefinition,
    ScopeAll,
    VisibleWhen,
    WriteMask,
)

ADMIN, TEACHER, GUARDIAN = "admin", "teacher", "guardian"
SETTINGS_RESOURCE = "organizationSettings"
# Recording what a payment provider reported (recordPaymentSucceeded/Failed): admins and jobs.
PAYMENT_OUTCOME_RESOURCE = "paymentOutcome"
# Sharing a completed session's report with its guardian (and taking it back): "update" on
# this resource, held per session -- only a role that also reaches the session may use it.
REPORT_SHARING_RESOURCE = "sessionReportSharing"
# The platform's own resources that are not entities are granted here too: ``pack``
# (create), ``auditLog`` (list: the audit trail) and ``job`` (list; update: retry and
# cancel). The admin role's wildcard allows them; teachers and guardians name none of them,
# so both are refused the admin console.
# The booking rules a booking screen shows (a subset of the settings, see settings.py): every
# role of the organization reads them; the other settings stay admin-only.
BOOKING_POLICY_RESOURCE = "bookingPolicy"
# Outbox messages: a role allowed OWN_MESSAGES lists the messages written to the entities its
# user is linked to (a guardian's to their guardian record, a teacher's to their teacher
# record); one allowed ORGANIZATION_MESSAGES (admins, through their wildcard) lists them all.
OWN_MESSAGES_RESOURCE = "ownMessages"
ORGANIZATION_MESSAGES_RESOURCE = "organizationMessages"


def _allow(resource: str, *actions: str) -> tuple[Policy, ...]:
    return tuple(Policy(resource=resource, action=a, effect="allow") for a in actions)


def _only(*fields: str) -> ReadMask:
    return ReadMask(mode="whitelist", fields=fields)


_ALL = ReadMask(mode="blacklist", fields=())

ADMIN_ROLE = RoleDefinition(
    name=ADMIN,
    description="Runs the business: every entity, every field.",
    policies=(
        Policy(resource="*", action="*", effect="allow"),
        # Payments and packs change only through domain operations (payment outcomes, booking,
        # completion, expiry), which also keep their jobs and credits consistent: no generic
        # edit can mint credits or move an expiry date under its scheduled warnings.
        Policy(resource="payment", action="update", effect="deny"),
        Policy(resource="entitlement", action="update", effect="deny"),
    ),
    scopes={"*": (ScopeAll(),)},
    readMasks={"*": _ALL},
    writeMasks={"*": WriteMask(create="*", update="*")},
)

SESSION_FIELDS_FOR_TEACHERS = (
    "teacherId",
    "studentId",
    "startTime",
    "duration",
    "subject",
    "meetingLink",
    "status",
    "teacherNotes",
    "reportSubmitted",
    "reportContent",
    "reportShared",
    "reportSharedAt",
    "reportSharedBy",
    "startedAt",
    "completedAt",
)

TEACHER_ROLE = RoleDefinition(
    name=TEACHER,
    description="Tutors: their own profile and sessions, and the students they teach.",
    policies=(
        *_allow("session", "list", "read", "update"),
        *_allow("student", "list", "read"),
        *_allow("teacher", "list", "read", "update"),
        *_allow(REPORT_SHARING_RESOURCE, "update"),  # on the sessions of their scope
        *_allow(BOOKING_POLICY_RESOURCE, "read"),
        *_allow(OWN_MESSAGES_RESOURCE, "list"),
    ),
    scopes={
        "session": (FieldMatch(field="teacherId", operator="eq", valuePath="actor.teacherId"),),
        "teacher": (FieldMatch(field="id", operator="eq", valuePath="actor.teacherId"),),
        "student": (ReferencedBy(source="session", field="studentId"),),
    },
    readMasks={
        "session": _only(*SESSION_FIELDS_FOR_TEACHERS),
        "student": _only("name", "grade", "subjects"),
        "teacher": _ALL,  # an organization may hide hourlyRate: see settings.py
    },
    writeMasks={
        "session": WriteMask(update=("teacherNotes", "reportSubmitted", "reportContent")),
        "teacher": WriteMask(
            update=("name", "phone", "bio", "subjects", "availability", "timezone")
        ),
    },
)

SESSION_FIELDS_FOR_GUARDIANS = (
    "teacherId",
    "studentId",
    "guardianId",
    "startTime",
    "duration",
    "subject",
    "meetingLink",
    "status",
    "entitlementId",
    "paymentId",
    "guardianNotes",
    "reportSubmitted",
    "reportShared",
    "reportSharedAt",
    "cancellationReason",
    "cancelledAt",
    "rescheduleCount",
    "holdExpiresAt",
    "startedAt",
    "completedAt",
)

_OWN = FieldMatch(field="guardianId", operator="eq", valuePath="actor.guardianId")

# The report may hold teacher feedback not meant for the family yet: guardians read it only
# once a teacher or an admin has shared it (shareSessionReport), and no longer once unshared.
REPORT_WHEN_SHARED = VisibleWhen(
    fields=("reportContent",),
    conditions=(FieldMatch(field="reportShared", operator="eq", value=True),),
)

GUARDIAN_ROLE = RoleDefinition(
    name=GUARDIAN,
    description="Parents: their own record, children, sessions, payments and packs.",
    policies=(
        *_allow("session", "list", "read", "create", "update"),
        *_allow("student", "list", "read", "update"),
        *_allow("guardian", "list", "read", "update"),
        *_allow("payment", "list", "read"),
        *_allow("entitlement", "list", "read"),
        *_allow("teacher", "list", "read"),
        *_allow(BOOKING_POLICY_RESOURCE, "read"),
        *_allow(OWN_MESSAGES_RESOURCE, "list"),
    ),
    scopes={
        "session": (_OWN,),
        "student": (_OWN,),
        "guardian": (FieldMatch(field="id", operator="eq", valuePath="actor.guardianId"),),
        "payment": (_OWN,),
        "entitlement": (_OWN,),
        # The tutor directory: guardians choose whom to book (public profile fields only).
        "teacher": (ScopeAll(),),
    },
    readMasks={
        "session": ReadMask(
            mode="whitelist", fields=SESSION_FIELDS_FOR_GUARDIANS, visibleWhen=(REPORT_WHEN_SHARED,)
        ),
        "student": _only("name", "grade", "subjects", "preferredTeacherId", "guardianId"),
        "guardian": _ALL,
        "payment": _ALL,
        "entitlement": _ALL,
        "teacher": _only("name", "subjects", "bio"),
    },
    writeMasks={
        # Sessions are created by booking (domain operation), never from raw input.
        "session": WriteMask(create=(), update=("guardianNotes",)),
        "student": WriteMask(update=("name", "grade", "subjects")),
        "guardian": WriteMask(
            update=("name", "email", "phone", "whatsappNumber", "billingAddress")
        ),
    },
)

ROLES = (ADMIN_ROLE, TEACHER_ROLE, GUARDIAN_ROLE)
