"""The session lifecycle: one table of transitions (from, to, who, when), and the guards.

Anything not in the table is ``INVALID_TRANSITION``; a transition in the table but not for the
caller's role is ``FORBIDDEN``; the right role at the wrong time is ``SCHEDULING_RULE``. Whose
session it is was settled before: the caller loaded it through their own scope.

The spec says both that a session becomes in-progress when its time arrives and that it becomes
a no-show when not started after the grace period. ``autoStartSessions`` chooses: when true the
system starts sessions at their start time; when false (the default) the teacher starts them
and the system marks those not started by start + grace as no-shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.platform.actor import SYSTEM_ROLE
from app.platform.errors import Forbidden
from app.tutoring.errors import InvalidTransition, SchedulingRule
from app.tutoring.roles import ADMIN, GUARDIAN, TEACHER
from app.tutoring.settings import TutoringSettings

SYSTEM = SYSTEM_ROLE
ROLE_ORDER = (SYSTEM, ADMIN, TEACHER, GUARDIAN)


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str
    roles: frozenset[str]
    when: str


def _t(action: str, source: str, target: str, roles: set[str], when: str) -> Transition:
    return Transition(action, source, target, frozenset(roles), when)


TRANSITIONS: tuple[Transition, ...] = (
    _t("confirm_payment", "pending_payment", "scheduled", {SYSTEM, ADMIN},
       "its payment succeeded"),
    _t("cancel", "pending_payment", "cancelled", {ADMIN, GUARDIAN},
       "guardian: before the start; admin: any time"),
    _t("lapse", "pending_payment", "cancelled", {SYSTEM},
       "the payment hold (paymentHoldMinutes) has expired"),
    _t("retry_payment", "pending_payment", "pending_payment", {ADMIN, GUARDIAN},
       "before the payment hold ends (a retry never extends it); the current payment failed "
       "or is still pending"),
    _t("cancel", "scheduled", "cancelled", {ADMIN, GUARDIAN},
       "guardian: at least guardianCancelCutoffMinutes before the start; admin: any time"),
    _t("reschedule", "scheduled", "scheduled", {ADMIN, GUARDIAN},
       "guardian: at least rescheduleCutoffMinutes before the start and fewer than "
       "maxReschedules times; admin: any time; the new time passes the booking rules"),
    _t("start", "scheduled", "in_progress", {SYSTEM, ADMIN, TEACHER},
       "teacher, admin: from teacherEarlyStartMinutes before the start until its end; "
       "system: at the start, when autoStartSessions"),
    _t("no_show", "scheduled", "no_show", {SYSTEM, ADMIN, TEACHER},
       "teacher, system: from start + noShowGraceMinutes (system only without "
       "autoStartSessions); admin: from the start"),
    _t("complete", "in_progress", "completed", {ADMIN, TEACHER},
       "with a non-empty report"),
)  # fmt: skip

_VERBS = {
    "confirm_payment": "confirmed",
    "cancel": "cancelled",
    "lapse": "lapsed",
    "retry_payment": "given a new payment",
    "reschedule": "rescheduled",
    "start": "started",
    "no_show": "marked as a no-show",
    "complete": "completed",
}


@dataclass(frozen=True)
class Moment:
    """What a guard looks at."""

    session: Mapping[str, Any]
    now: datetime
    settings: TutoringSettings

    @property
    def start(self) -> datetime:
        return self.session["startTime"]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.session["duration"])

    def minutes(self, n: int) -> timedelta:
        return timedelta(minutes=n)


Guard = Callable[[Moment], str | None]


def _before(cutoff: Callable[[TutoringSettings], int], what: str) -> Guard:
    def guard(m: Moment) -> str | None:
        minutes = cutoff(m.settings)
        if m.now > m.start - m.minutes(minutes):
            return f"{what} must happen at least {minutes / 60:g} hours before the start."
        return None

    return guard


def _reschedule_by_guardian(m: Moment) -> str | None:
    if m.session.get("rescheduleCount", 0) >= m.settings.maxReschedules:
        return f"A session can be rescheduled at most {m.settings.maxReschedules} times."
    return _before(lambda s: s.rescheduleCutoffMinutes, "Rescheduling")(m)


def _teacher_start(m: Moment) -> str | None:
    if m.now < m.start - m.minutes(m.settings.teacherEarlyStartMinutes):
        return (
            f"Sessions can be started at most {m.settings.teacherEarlyStartMinutes} minutes early."
        )
    if m.now >= m.end:
        return "The session's time is over; it can no longer be started."
    return None


def _admin_start(m: Moment) -> str | None:
    if m.now < m.start - m.minutes(m.settings.teacherEarlyStartMinutes):
        return (
            f"Sessions can be started at most {m.settings.teacherEarlyStartMinutes} minutes early."
        )
    return None


def _auto_start(m: Moment) -> str | None:
    if not m.settings.autoStartSessions:
        return "Sessions are started by their teacher in this organization."
    return None if m.now >= m.start else "The session has not reached its start time."


def _after_grace(m: Moment) -> str | None:
    if m.now < m.start + m.minutes(m.settings.noShowGraceMinutes):
        return f"A no-show can be recorded {m.settings.noShowGraceMinutes} minutes after the start."
    return None


def _system_no_show(m: Moment) -> str | None:
    if m.settings.autoStartSessions:
        return "Sessions start automatically in this organization."
    return _after_grace(m)


def _admin_no_show(m: Moment) -> str | None:
    return None if m.now >= m.start else "A no-show can be recorded once the session has started."


def _hold_expired(m: Moment) -> str | None:
    hold = m.session.get("holdExpiresAt")
    return None if hold is not None and hold <= m.now else "The payment hold has not expired."


def _hold_open(m: Moment) -> str | None:
    hold = m.session.get("holdExpiresAt")
    if hold is None or hold > m.now:
        return None
    return "The payment hold has ended and the slot is no longer held; book the session again."


def _guardian_cancel_pending(m: Moment) -> str | None:
    return None if m.now < m.start else "The session's time has passed."


GUARDS: dict[tuple[str, str, str], Guard] = {
    ("cancel", "scheduled", GUARDIAN): _before(lambda s: s.guardian_cancel_cutoff, "Cancelling"),
    ("cancel", "pending_payment", GUARDIAN): _guardian_cancel_pending,
    ("reschedule", "scheduled", GUARDIAN): _reschedule_by_guardian,
    ("start", "scheduled", TEACHER): _teacher_start,
    ("start", "scheduled", ADMIN): _admin_start,
    ("start", "scheduled", SYSTEM): _auto_start,
    ("no_show", "scheduled", TEACHER): _after_grace,
    ("no_show", "scheduled", SYSTEM): _system_no_show,
    ("no_show", "scheduled", ADMIN): _admin_no_show,
    ("lapse", "pending_payment", SYSTEM): _hold_expired,
    ("retry_payment", "pending_payment", ADMIN): _hold_open,
    ("retry_payment", "pending_payment", GUARDIAN): _hold_open,
}


def authorize(action: str, roles: frozenset[str], moment: Moment) -> Transition:
    """The transition ``action`` applies to the session now, or the error that says why not."""
    status = moment.session.get("status")
    found = [t for t in TRANSITIONS if t.action == action and t.source == status]
    if not found:
        raise InvalidTransition(f"A {status} session cannot be {_VERBS.get(action, action)}.")
    transition = found[0]
    allowed = [r for r in ROLE_ORDER if r in roles and r in transition.roles]
    if not allowed:
        raise Forbidden(f"Your role may not have a {status} session {_VERBS[action]}.")
    reasons = []
    for role in allowed:
        guard = GUARDS.get((action, status, role))
        reason = guard(moment) if guard else None
        if reason is None:
            return transition
        reasons.append(reason)
    raise SchedulingRule(reasons[0])
