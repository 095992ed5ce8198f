"""Generic root and relation resolvers: the same three calls for every entity type."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from strawberry.types import Info

from app.graphql.types.base import Connection
from app.platform.entities import Link, OrderKey


async def get_one(info: Info, slug: str, entity_id: str, cls: type) -> Any:
    """Null both when the entity is absent and when it is outside the caller's scope."""
    entity = await info.context.loaders.of(slug).load(str(entity_id))
    return cls(entity=entity) if entity is not None else None


async def connection(
    info: Info,
    slug: str,
    cls: Callable[..., Any],
    where: Mapping[str, Any] | None,
    search: str | None,
    order_by: Sequence[OrderKey],
    first: int,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    link: Link | None = None,
) -> Connection[Any]:
    """``where``/``search``/``order_by`` are the caller's; ``link`` is the relation a
    to-many field follows from its parent (the engine judges each)."""
    entities = info.context.entities
    page = await entities.query(
        slug,
        where=where,
        search=search,
        order_by=order_by,
        first=first,
        after=after,
        last=last,
        before=before,
        link=link,
    )
    info.context.limits.charge(1 + 2 * len(page.items))  # the connection, its edges and nodes

    async def count() -> int:
        return await entities.count(slug, where=where, search=search, link=link)

    return Connection.of(page, cls, count)
