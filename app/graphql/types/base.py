"""Building blocks shared by the entity types: masked fields, relations, connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from app.graphql.permissions import Masked, Scoped
from app.platform.entities import Entity, Page

T = TypeVar("T")


def masked(name: str, convert: Callable[[Any], Any] | None = None, description: str | None = None):
    """A field read from the entity's data, null when the actor's mask hides it."""

    def resolve(root: Any) -> Any:
        value = root.entity.get(name)
        return convert(value) if convert is not None and value is not None else value

    return strawberry.field(resolver=resolve, extensions=[Masked(name)], description=description)


def objects_of(cls: type) -> Callable[[Any], Any]:
    """Converts a stored sub-document (or list of them) into a GraphQL object type."""

    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [cls.from_dict(v) for v in value]
        return cls.from_dict(value)

    return convert


@strawberry.interface(description="An entity: its id and timestamps are visible whenever it is.")
class Node:
    entity: strawberry.Private[Entity]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.entity.id)

    @strawberry.field
    def createdAt(self) -> datetime:
        return self.entity.created_at

    @strawberry.field
    def updatedAt(self) -> datetime:
        return self.entity.updated_at


async def load_one(info: Info, slug: str, entity_id: Any) -> Entity | None:
    if not isinstance(entity_id, str):
        return None
    entity = await info.context.loaders.of(slug).load(entity_id)
    if entity is not None:
        info.context.limits.charge(1)
    return entity


def relation(slug: str) -> list[Scoped]:
    return [Scoped(slug, relation=True)]


@strawberry.type
class PageInfo:
    hasNextPage: bool
    endCursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    pageInfo: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Entities in the caller's scope matching the filter.")
    async def totalCount(self) -> int:
        return await self._count()

    @classmethod
    def of(
        cls, page: Page, wrap: Callable[[Entity], T], count: Callable[[], Awaitable[int]]
    ) -> Connection[T]:
        return cls(
            edges=[
                Edge(cursor=c, node=wrap(e)) for c, e in zip(page.cursors, page.items, strict=True)
            ],
            pageInfo=PageInfo(hasNextPage=page.has_next_page, endCursor=page.end_cursor),
            _count=count,
        )


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"
