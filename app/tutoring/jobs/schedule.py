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


async def session_scheduled(
    domain: ActorEntities, session_id: str, session: dict[str, Any], settings: TutoringSettings
) -> None:
    """Reminders to the guardian and the teacher, and the start or no-show automation."""
    jobs = domain.service.jobs
    start = session["startTime"]
    at = stamp(start)
    remind_at = start - timedelta(minutes=settings.reminderLeadMinutes)
    for recipient in ("guardian", "teacher"):
        await jobs.enqueue(
            domain.actor,
            REMINDER,
            {"sessionId": session_id, "recipient": recipient, "startTime": at},
            remind_at,
            f"{REMINDER}:{session_id}:{recipient}:{at}",
            refs=(session_id,),
        )
    if settings.autoStartSessions:
        kind, when = AUTO_START, start
    else:
        kind, when = NO_SHOW, start + timedelta(minutes=settings.noShowGraceMinutes)
    await jobs.enqueue(
        domain.actor,
        kind,
        {"sessionId": session_id, "startTime": at},
        when,
        f"{kind}:{session_id}:{at}",
        refs=(session_id,),
    )


async def session_on_hold(domain: ActorEntities, session_id: str, hold: datetime) -> None:
    """A session awaiting payment gives its slot back when the hold ends."""
    await domain.service.jobs.enqueue(
        domain.actor,
        HOLD_LAPSE,
        {"sessionId": session_id, "holdExpiresAt": stamp(hold)},
        hold,
        f"{HOLD_LAPSE}:{session_id}:{stamp(hold)}",
        refs=(session_id,),
    )


async def session_completed(domain: ActorEntities, session_id: str, now: datetime) -> None:
    await domain.service.jobs.enqueue(
        domain.actor,
        FOLLOWUP,
        {"sessionId": session_id},
        now,
        f"{FOLLOWUP}:{session_id}",
        refs=(session_id,),
    )


async def entitlement_created(
    domain: ActorEntities,
    entitlement_id: str,
    expires_at: datetime | None,
    settings: TutoringSettings,
) -> None:
    if expires_at is None:
        return
    jobs = domain.service.jobs
    at = stamp(expires_at)
    for days in settings.expiryWarningDays:
        await jobs.enqueue(
            domain.actor,
            EXPIRY_WARNING,
            {"entitlementId": entitlement_id, "daysRemaining": days, "expiresAt": at},
            expires_at - timedelta(days=days),
            f"{EXPIRY_WARNING}:{entitlement_id}:{days}:{at}",
            refs=(entitlement_id,),
        )
    await jobs.enqueue(
        domain.actor,
        EXPIRE,
        {"entitlementId": entitlement_id, "expiresAt": at},
        expires_at,
        f"{EXPIRE}:{entitlement_id}:{at}",
        refs=(entitlement_id,),
    )
