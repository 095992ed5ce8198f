"""What one subscriber sees of a change: the document read again, as the subscriber.

A change carries no data, only what changed. Each view reads the document anew through the
subscriber's permissions -- a fresh ``ActorEntities`` per change, built from the
organization's state as of that change -- so the event holds the subscriber's scope and
masks, never the writer's, and a role, mask or link change applies from the next change.

``EntityView`` (one entity type, optionally filtered) also remembers which documents the
subscriber holds: those it was sent and those in scope when it subscribed (the first
``SEED`` of them, newest first). A change to a document outside the subscriber's scope (or
filter) is never sent -- unless the subscriber holds it: then it has just left, and one last
event says so (``removed``, without the document). Nothing is sent about it after that
unless it comes back. What a view remembers is bounded (``MAX_KNOWN`` documents, the least
recently seen forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.platform.changes import DELETED, Change
from app.platform.entities import ActorEntities, OrderKey
from app.platform.jobs import JOB_RESOURCE, JobService
from app.platform.outbox import MESSAGE_TOPIC, Outbox
from app.platform.permissions import Action

SEED = 100
MAX_KNOWN = 10_000


@dataclass(frozen=True, slots=True)
class Seen:
    change: Change
    document: Any  # an Entity, or a platform record (a message, a job); None when removed
    removed: bool = False


class EntityView:
    def __init__(
        self,
        slug: str,
        where: Mapping[str, Any] | None = None,
        search: str | None = None,
        *,
        max_known: int = MAX_KNOWN,
    ) -> None:
        self.slug = slug
        self.types = frozenset({slug})
        self._where = dict(where or {})
        self._search = search
        self._known: OrderedDict[str, None] = OrderedDict()
        self._max_known = max_known

    async def seed(self, entities: ActorEntities) -> None:
        """Checks the subscription as a list query would be (the role may list the type; a
        filter on a hidden field is ``FORBIDDEN``) and remembers the newest documents it
        reaches, so that one of them leaving the scope is announced."""
        page = await entities.query(
            self.slug,
            where=self._where,
            search=self._search,
            order_by=[OrderKey("createdAt", descending=True)],
            first=SEED,
        )
        for entity in reversed(page.items):
            self._remember(entity.id)

    async def see(self, entities: ActorEntities, change: Change) -> Seen | None:
        if change.type != self.slug:
            return None
        found = None
        if change.action != DELETED:
            page = await entities.query(
                self.slug,
                where={**self._where, "id": {"eq": change.id}},
                search=self._search,
                first=1,
            )
            found = page.items[0] if page.items else None
        if found is not None:
            self._remember(found.id)
            return Seen(change, found)
        if change.id in self._known:  # the subscriber held it; now it is out of their reach
            del self._known[change.id]
            return Seen(change, None, removed=True)
        return None

    def _remember(self, entity_id: str) -> None:
        self._known[entity_id] = None
        self._known.move_to_end(entity_id)
        if len(self._known) > self._max_known:
            self._known.popitem(last=False)


class MessageView:
    """Outbox messages, as the pack decides who hears of them: ``may_listen`` refuses a
    subscriber (raising), ``hears`` picks the messages one receives."""

    types = frozenset({MESSAGE_TOPIC})

    def __init__(
        self,
        outbox: Outbox,
        may_listen: Callable[[ActorEntities], None],
        hears: Callable[[ActorEntities, Mapping[str, Any]], bool],
    ) -> None:
        self._outbox = outbox
        self._may_listen = may_listen
        self._hears = hears

    async def seed(self, entities: ActorEntities) -> None:
        self._may_listen(entities)

    async def see(self, entities: ActorEntities, change: Change) -> Seen | None:
        if change.type != MESSAGE_TOPIC:
            return None
        message = await self._outbox.get(change.organization, change.id)
        if message is None or not self._hears(entities, message):
            return None
        return Seen(change, message)


class JobView:
    """Background jobs, for roles whose policies let them list jobs."""

    types = frozenset({JOB_RESOURCE})

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def seed(self, entities: ActorEntities) -> None:
        entities.access.require_resource(JOB_RESOURCE, Action.LIST)

    async def see(self, entities: ActorEntities, change: Change) -> Seen | None:
        if change.type != JOB_RESOURCE or not entities.access.compiled.roles_for(
            JOB_RESOURCE, Action.LIST
        ):
            return None  # a role that lost the permission hears nothing more
        job = await self._jobs.by_id(change.organization, change.id)
        return Seen(change, job) if job is not None else None
