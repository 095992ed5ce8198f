"""The message outbox: handlers write messages here; a pluggable sender delivers them.

Each message has an idempotency key under a unique index, so a job that runs twice (at least
once delivery) writes one message. Delivery claims a message with one conditional update
before sending, so two senders never send the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from bson import ObjectId

from app.platform import metrics
from app.platform.changes import Changes
from app.platform.clock import Clock, system_clock
from app.platform.store import DuplicateKey, IndexSpec, Store

log = logging.getLogger(__name__)

MESSAGES_COLLECTION = "messages"
MESSAGE_TOPIC = "message"  # what live subscribers hear a message's changes under
MESSAGE_INDEXES = (
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("idempotencyKey", 1)), unique=True),
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("status", 1), ("createdAt", 1))),
    IndexSpec(MESSAGES_COLLECTION, (("organizationId", 1), ("createdAt", 1), ("_id", 1))),
)


class Sender(Protocol):
    async def send(self, message: Mapping[str, Any]) -> None: ...


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
    ) -> bool:
        """Queues a message; False (and nothing written) if the key was already used."""
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
