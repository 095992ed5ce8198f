"""Announcing committed writes: which document of which organization changed, and how.

Every write of an entity, a job or an outbox message passes one of three services (the secure
entity service, ``JobService``, ``Outbox``); each records its write here once it has
succeeded. What is announced is a ``Change`` -- organization, type, id and what happened
(``created``, ``updated``, ``deleted``, or a domain verb such as ``booked``) -- never the
document's data: whoever listens reads the document again with its own permissions.

Inside a multi-write operation (``undo_on_failure``) a change is held until the outermost
operation succeeds and dropped if it fails, so a listener never hears of a change that was
taken back; the changes of one operation are handed to the publisher together, in the order
they were written. Without a publisher (no Redis: a test, a one-off command) nothing is
recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.platform.undo import defer_until_commit

log = logging.getLogger(__name__)

CREATED, UPDATED, DELETED = "created", "updated", "deleted"


@dataclass(frozen=True, slots=True)
class Change:
    organization: str
    type: str  # an entity type's slug, or a platform topic such as "job" or "message"
    id: str
    action: str
    sequence: int = 0  # set by the publisher: increasing per organization


class Publisher(Protocol):
    async def publish(self, changes: Sequence[Change]) -> None: ...


class Changes:
    """The one place writes are announced from; ``publisher`` is attached with Redis."""

    def __init__(self) -> None:
        self.publisher: Publisher | None = None

    async def record(self, organization: str, type: str, id: str, action: str) -> None:
        """Called after a write succeeded."""
        if self.publisher is None:
            return
        change = Change(organization, type, id, action)
        if not defer_until_commit(self, change):
            await self.commit([change])

    async def commit(self, items: list[Change]) -> None:
        """Publishes changes whose writes are final. A publisher that fails is logged and
        the write stands: listeners learn of missed changes from the sequence."""
        publisher = self.publisher
        if publisher is None or not items:
            return
        try:
            await publisher.publish(items)
        except Exception:
            log.warning("could not publish %d change(s); live subscribers miss them", len(items))
