"""Per-request context: the actor, their permission-bound entity service, and DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from app.graphql.limits import RequestLimits
from app.platform.actor import Actor
from app.platform.entities import ActorEntities, Entity
from app.platform.permissions import Action
from app.runtime import Runtime


class Loaders:
    """One DataLoader per entity type, so following a relation from a page of N entities is
    one store query whatever N is. Each batch goes through the secure service, so what comes
    back is scoped and masked like any other read."""

    def __init__(self, entities: ActorEntities) -> None:
        self._entities = entities
        self._loaders: dict[str, DataLoader[str, Entity | None]] = {}
        self._readable: dict[str, DataLoader[str, Entity | None] | None] = {}
        self._nodes: dict[tuple[str, str], Any] = {}

    def node(self, cls: type, entity: Entity) -> Any:
        """The GraphQL object of an entity, one per entity and request: a page of 50
        sessions of 4 students shares 4 student objects instead of building 50."""
        key = (entity.type, entity.id)
        found = self._nodes.get(key)
        if found is None or found.entity is not entity:
            found = self._nodes[key] = cls(entity=entity)
        return found

    def readable(self, slug: str) -> DataLoader[str, Entity | None] | None:
        """The loader of a type the actor's roles may read, else None (decided once per
        type and request: relations ask for every row of a page)."""
        if slug not in self._readable:
            allowed = self._entities.access.allows(slug, Action.READ)
            self._readable[slug] = self.of(slug) if allowed else None
        return self._readable[slug]

    def of(self, slug: str) -> DataLoader[str, Entity | None]:
        if slug not in self._loaders:

            async def load(ids: list[str]) -> list[Entity | None]:
                found = await self._entities.get_many(slug, ids)
                return [found.get(i) for i in ids]

            self._loaders[slug] = DataLoader(load_fn=load)
        return self._loaders[slug]


@dataclass
class Context:
    runtime: Runtime
    actor: Actor
    entities: ActorEntities
    request_id: str
    limits: RequestLimits
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.entities)

    def renew(self, actor: Actor, entities: ActorEntities, limits: RequestLimits) -> None:
        """Starts over as a new request of the same caller: a subscription's context lives
        as long as the subscription, and each of its events is read afresh (new permissions,
        empty DataLoader caches, its own object count)."""
        self.actor = actor
        self.entities = entities
        self.limits = limits
        self.loaders = Loaders(entities)
