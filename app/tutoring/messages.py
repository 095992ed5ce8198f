"""What the pack's messages say, and who reads them.

Texts are rendered when a job writes the message, in the recipient's time zone (a teacher's
own, else the organization's), and stored with it: a guardian reading a reminder later sees
what was sent, even after the templates or their time zone change. The templates are code,
filled with ``str.format`` from values only (names, subjects, counts), so data cannot turn
into template syntax.

Reading is decided by the roles' data (``roles.py``): a role allowed
``ORGANIZATION_MESSAGES_RESOURCE`` (admins) reads every message of the organization; one
allowed ``OWN_MESSAGES_RESOURCE`` (teachers, guardians) reads the messages written to the
entities its user is linked to (``outbox.recipient_ids``); anyone else is ``FORBIDDEN``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.platform.entities import ActorEntities, Page
from app.platform.inputs import utc_datetime
from app.platform.outbox import Outbox, recipient_ids
from app.platform.permissions import Action
from app.tutoring.roles import ORGANIZATION_MESSAGES_RESOURCE, OWN_MESSAGES_RESOURCE

# template -> (subject, body); fields: name, subject, when, expires, remainingCredits,
# daysRemaining.
TEXTS: dict[str, tuple[str, str]] = {
    "session_reminder": (
        "Reminder: {subject} session on {when}",
        "Hello {name}, this is a reminder of the {subject} session on {when}.",
    ),
    "trial_followup_buy_pack": (
        "How was your trial session?",
        "Hello {name}, thank you for trying a session with us. A pack of sessions makes "
        "booking the next ones simpler.",
    ),
    "pack_followup_renew": (
        "Your pack is running low",
        "Hello {name}, your pack has {remainingCredits} credit(s) left. Renew it to keep "
        "booking sessions.",
    ),
    "pack_expiring": (
        "Your pack expires in {daysRemaining} day(s)",
        "Hello {name}, your pack with {remainingCredits} credit(s) left expires on {expires}.",
    ),
}


def _local(stamp: Any, zone: ZoneInfo) -> str:
    """An ISO time stamp as the recipient reads it: "Wednesday 4 November 2026, 10:00
    (Europe/Berlin)"."""
    if not isinstance(stamp, str):
        return ""
    at = datetime.fromisoformat(stamp).astimezone(zone)
    return f"{at:%A} {at.day} {at:%B %Y, %H:%M} ({zone.key})"


def render(
    template: str, variables: Mapping[str, Any], zone: ZoneInfo
) -> tuple[str | None, str | None]:
    """The subject and body of a message, or (None, None) for a template without text."""
    texts = TEXTS.get(template)
    if texts is None:
        return None, None
    values = {
        "name": variables.get("name") or "there",
        "subject": variables.get("subject") or "tutoring",
        "when": _local(variables.get("startTime"), zone),
        "expires": _local(variables.get("expiresAt"), zone),
        "remainingCredits": variables.get("remainingCredits", 0),
        "daysRemaining": variables.get("daysRemaining", ""),
    }
    subject, body = texts
    return subject.format(**values), body.format(**values)


@dataclass(frozen=True)
class MessageQuery:
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    first: int = 20
    after: str | None = None


def readable_recipients(entities: ActorEntities) -> list[str] | None:
    """The recipients whose messages the caller reads: None for every message of the
    organization (``ORGANIZATION_MESSAGES_RESOURCE``), else the records its user is linked to
    (``OWN_MESSAGES_RESOURCE``); ``FORBIDDEN`` for a role allowed neither."""
    access = entities.access
    if access.allows(ORGANIZATION_MESSAGES_RESOURCE, Action.LIST):
        return None
    access.require_resource(OWN_MESSAGES_RESOURCE, Action.LIST)
    return recipient_ids(entities.actor)


def require_own_messages(entities: ActorEntities) -> None:
    """Live updates of one's own messages: for the roles that may read messages at all."""
    readable_recipients(entities)


def written_to_caller(entities: ActorEntities, message: Mapping[str, Any]) -> bool:
    """Whether ``message`` was written to a record the caller's user is linked to."""
    return message.get("recipientId") in recipient_ids(entities.actor)


async def list_messages(
    entities: ActorEntities, query: MessageQuery
) -> tuple[Page[dict[str, Any]], Callable[[], Awaitable[int]]]:
    """A page of the messages the caller may read, newest first, and how to count them all
    (only when asked: most screens do not show the total)."""
    recipients = readable_recipients(entities)
    since = utc_datetime(query.since, "from") if query.since else None
    until = utc_datetime(query.until, "to") if query.until else None
    outbox = Outbox(entities.service.store)
    org = entities.actor.organization_id
    page = await outbox.page(
        org,
        recipients=recipients,
        status=query.status,
        since=since,
        until=until,
        first=query.first,
        after=query.after,
    )

    async def count() -> int:
        return await outbox.count(
            org, recipients=recipients, status=query.status, since=since, until=until
        )

    return page, count
