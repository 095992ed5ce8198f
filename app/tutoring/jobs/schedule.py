"""When jobs are scheduled: called by the domain operations at the moment a session or pack
reaches the state a job is about. Keys name the state they were scheduled for (the start
time, the hold's end, the expiry date), so a reschedule schedules new jobs and the old ones,
when they run, find their moment gone and write nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.platform.entities import ActorEntities
from app.tutoring.settings import TutoringSettings

REMINDER = "session.reminder"
FOLLOWUP = "session.followup"
AUTO_START = "session.auto_start"
NO_SHOW = "session.no_show_check"
HOLD_LAPSE = "session.hold_lapse"
EXPIRY_WARNING = "entitlement.expiry_warning"
EXPIRE = "entitlement.expire"


def stamp(when: datetime) -> str:
    return when.isoformat()


async def _enqueue(
    domain: ActorEntities, kind: str, payload: dict[str, Any], when: datetime, *key: str
) -> None:
    """One job per (kind, key parts); the first key part is the entity the job is about."""
    await domain.service.jobs.enqueue(
        domain.actor, kind, payload, when, ":".join((kind, *key)), refs=(key[0],)
    )


async def session_scheduled(
    domain: ActorEntities, session_id: str, session: dict[str, Any], settings: TutoringSettings
) -> None:
    """Reminders to the guardian and the teacher, and the start or no-show automation."""
    start = session["startTime"]
    at = stamp(start)
    remind_at = start - timedelta(minutes=settings.reminderLeadMinutes)
    for recipient in ("guardian", "teacher"):
        payload = {"sessionId": session_id, "recipient": recipient, "startTime": at}
        await _enqueue(domain, REMINDER, payload, remind_at, session_id, recipient, at)
    if settings.autoStartSessions:
        kind, when = AUTO_START, start
    else:
        kind, when = NO_SHOW, start + timedelta(minutes=settings.noShowGraceMinutes)
    await _enqueue(domain, kind, {"sessionId": session_id, "startTime": at}, when, session_id, at)


async def session_on_hold(domain: ActorEntities, session_id: str, hold: datetime) -> None:
    """A session awaiting payment gives its slot back when the hold ends."""
    payload = {"sessionId": session_id, "holdExpiresAt": stamp(hold)}
    await _enqueue(domain, HOLD_LAPSE, payload, hold, session_id, stamp(hold))


async def session_completed(domain: ActorEntities, session_id: str, now: datetime) -> None:
    await _enqueue(domain, FOLLOWUP, {"sessionId": session_id}, now, session_id)


async def entitlement_created(
    domain: ActorEntities,
    entitlement_id: str,
    expires_at: datetime | None,
    settings: TutoringSettings,
) -> None:
    if expires_at is None:
        return
    at = stamp(expires_at)
    for days in settings.expiryWarningDays:
        payload = {"entitlementId": entitlement_id, "daysRemaining": days, "expiresAt": at}
        warn_at = expires_at - timedelta(days=days)
        await _enqueue(domain, EXPIRY_WARNING, payload, warn_at, entitlement_id, str(days), at)
    payload = {"entitlementId": entitlement_id, "expiresAt": at}
    await _enqueue(domain, EXPIRE, payload, expires_at, entitlement_id, at)
