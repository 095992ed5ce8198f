"""The message outbox: handlers write messages here; a pluggable sender delivers them.

Each message has an idempotency key under a unique index, so a job that runs twice (at least
once delivery) writes one message. Delivery claims a message with one conditional update
before sending, so two senders never send the same message.

A message is addressed to an entity (``recipientType``/``recipientId``: a guardian record, a
teacher record). Users read the messages of the entities they are linked to
(``recipient_ids``), newest first, a bounded keyset page at a time (``page``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from bson import ObjectId

from app.platform import metrics
from app.platform.actor import Actor
from app.platform.changes import Changes
from app.platform.clock import Clock, system_clock
from app.platform.entities.models import Page
from app.platform.entities.query import cursor_condition, encode_cursor
from app.platform.errors import BadUserInput
from app.platform.store import DuplicateKey, IndexSpec, Store, and_filters

log = logging.getLogger(__name__)

MESSAGES_COLLECTION = "messages"
MESSAGE_TOPIC = "message"  # what live subscribers hear a message's changes under
MESSAGE_INDEXES = (
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("idempotencyKey", 1)), unique=True),
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("status", 1), ("createdAt", 1))),
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("createdAt", 1), ("_id", 1))),
    # A user's own messages, newest first (``Outbox.page`` with recipients).
    IndexSpec(
        MESSAGES_COLLECTION,
        (("organizationId", 1), ("recipientId", 1), ("createdAt", 1), ("_id", 1)),
    ),
)
NEWEST_FIRST = (("createdAt", -1), ("_id", -1))
MAX_PAGE = 100


def recipient_ids(actor: Actor) -> list[str]:
    """The entities a user is linked to in the organization (their teacher record, their
    guardian record, ...): the messages written to any of them are that user's. Entity ids
    are unique across types, so the ids alone select them. A user linked to nothing has no
    messages."""
    return sorted({v for v in actor.links.values() if isinstance(v, str) and v})


class Sender(Protocol):
    async def send(self, message: Mapping[str, Any]) -> None: ...


def _where(
    recipients: Sequence[str] | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any] | None:
    """The filter of ``page``; None when it cannot match (no recipients)."""
    where: dict[str, Any] = {}
    if recipients is not None:
        if not recipients:
            return None
        where["recipientId"] = {"$in": list(recipients)}
    if status is not None:
        where["status"] = status
    created: dict[str, Any] = {}
    if since is not None:
        created["$gte"] = since
    if until is not None:
        created["$lt"] = until
    if created:
        where["createdAt"] = created
    return where


class LoggingSender:
    """The development sender: logs that a message went out. Only ids and the template's
    name: its variables hold names and times meant for the recipient, not for logs."""

    async def send(self, message: Mapping[str, Any]) -> None:
        log.info(
            "message %s to %s %s via %s: %s",
            message["idempotencyKey"],
            message["recipientType"],
            message["recipientId"],
            message["channel"],
            message["template"],
        )


class Outbox:
    def __init__(
        self, store: Store, *, clock: Clock = system_clock, changes: Changes | None = None
    ) -> None:
        self._col = store.collection(MESSAGES_COLLECTION)
        self._clock = clock
        # A message queued or sent is announced, so its recipient sees it live (messageQueued).
        self._changes = changes or Changes()

    async def write(
        self,
        org: str,
        *,
        recipient_type: str,
        recipient_id: str,
        channel: str,
        template: str,
        variables: Mapping[str, Any],
        idempotency_key: str,
        subject: str | None = None,
        body: str | None = None,
    ) -> bool:
        """Queues a message; False (and nothing written) if the key was already used. The
        ``subject`` and ``body`` are the text as it will be sent, rendered by the writer when
        it is written, so what the recipient reads later is what went out."""
        message_id = str(ObjectId())
        try:
            await self._col.insert_one(
                org,
                {
                    "_id": message_id,
                    "idempotencyKey": idempotency_key,
                    "recipientType": recipient_type,
                    "recipientId": recipient_id,
                    "channel": channel,
                    "template": template,
                    "variables": dict(variables),
                    "subject": subject,
                    "body": body,
                    "status": "queued",
                    "createdAt": self._clock(),
                },
            )
        except DuplicateKey:
            return False
        await self._changes.record(org, MESSAGE_TOPIC, message_id, "queued")
        return True

    async def get(self, org: str, message_id: str) -> dict[str, Any] | None:
        return await self._col.find_one(org, {"_id": message_id})

    async def list(self, org: str, **filter: Any) -> list[dict[str, Any]]:
        return await self._col.find(org, filter, sort=[("createdAt", 1), ("_id", 1)])

    async def page(
        self,
        org: str,
        *,
        recipients: Sequence[str] | None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Page[dict[str, Any]]:
        """The organization's messages, newest first, written to ``recipients`` (every
        message when None), with ``status``, created in [since, until). ``first`` is capped
        at ``MAX_PAGE``; ``after`` continues after a cursor of an earlier page."""
        if first < 0:
            raise BadUserInput("'first' must not be negative.", {"first": "negative"})
        first = min(first, MAX_PAGE)
        spec = list(NEWEST_FIRST)
        after_cursor = cursor_condition(after, spec) if after else None
        where = _where(recipients, status, since, until)
        if where is None or first == 0:
            return Page([])
        query = and_filters(where, after_cursor)
        docs = await self._col.find(org, query, sort=spec, limit=first + 1)
        items = docs[:first]
        return Page(items, len(docs) > first, partial(encode_cursor, spec=spec))

    async def count(
        self,
        org: str,
        *,
        recipients: Sequence[str] | None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many messages ``page`` pages through with the same arguments."""
        where = _where(recipients, status, since, until)
        return 0 if where is None else await self._col.count(org, where)

    async def deliver(self, sender: Sender, *, limit: int = 100) -> int:
        """Sends queued messages of every organization; returns how many were sent. Then
        counts what is still queued, for the queue-depth gauge."""
        sent = 0
        for org in await self._col.organizations({"status": "queued"}):
            for _ in range(limit):
                message = await self._col.find_one_and_update(
                    org, {"status": "queued"}, {"$set": {"status": "sending"}}
                )
                if message is None:
                    break
                try:
                    await sender.send(message)
                except Exception:
                    metrics.OUTBOX_FAILURES.inc()
                    log.exception("sending message %s failed", message["idempotencyKey"])
                    await self._col.update_one(
                        org, {"_id": message["_id"]}, {"$set": {"status": "queued"}}
                    )
                    break
                await self._col.update_one(
                    org,
                    {"_id": message["_id"]},
                    {"$set": {"status": "sent", "sentAt": self._clock()}},
                )
                await self._changes.record(org, MESSAGE_TOPIC, message["_id"], "sent")
                sent += 1
                metrics.OUTBOX_SENT.inc()
        queued = 0
        for org in await self._col.organizations({"status": "queued"}):
            queued += await self._col.count(org, {"status": "queued"})
        metrics.OUTBOX_QUEUED.set(queued)
        return sent
