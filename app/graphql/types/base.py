"""Building blocks shared by the entity types: masked fields, relations, connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from app.graphql.types.local import local
from app.platform.entities import Entity, Page

T = TypeVar("T")


ENTITY_FIELD = "entity_field"


def masked(
    name: str,
    convert: Callable[[Any], Any] | None = None,
    description: str | None = None,
    deprecation_reason: str | None = None,
):
    """A field of the entity's data (see ``entity_object``). The data an ``Entity`` carries
    is already masked by the permission engine (hidden fields are simply absent), so a hidden
    field is null: the mask is decided in one place, the engine. ``name`` is the data's key;
    the GraphQL field may carry another name (``durationMinutes`` reads ``duration``)."""
    return strawberry.field(
        default=None,
        description=description,
        deprecation_reason=deprecation_reason,
        metadata={ENTITY_FIELD: (name, convert)},
    )


def objects_of(cls: type) -> Callable[[Any], Any]:
    """Converts a stored sub-document (or list of them) into a GraphQL object type."""

    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [cls.from_dict(v) for v in value]
        return cls.from_dict(value)

    return convert


def entity_object(cls: type) -> type:
    """Builds ``cls(entity=...)`` objects by copying the entity's masked data into the
    object's attributes in one step (a hidden field is absent, so the class default, null,
    shows), converting the few fields that need it (sub-objects). GraphQL then reads plain
    attributes -- no resolver call per field. Enum fields need no conversion: graphql-core
    serializes an enum by its value, which is what the store holds (``"scheduled"`` is
    ``SCHEDULED``), in one dictionary look-up; an enum member would cost Strawberry a scan
    of the enum's values per row."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    converters, aliases = [], []
    for f in definition.fields:
        key, convert = (f.metadata or {}).get(ENTITY_FIELD, (None, None))
        if key is not None and key != f.python_name:
            aliases.append((f.python_name, key))
        if key is not None and convert is not None:
            if key != f.python_name:
                raise TypeError(f"{cls.__name__}.{f.python_name}: convert under its data name")
            converters.append((key, convert))

    def __init__(self: Any, entity: Entity) -> None:
        values = self.__dict__
        values.update(entity.data)
        for key, convert in converters:
            value = values.get(key)
            if value is not None:
                values[key] = convert(value)
        for name, key in aliases:
            values[name] = values.get(key)
        values["entity"] = entity
        values["id"] = entity.id
        values["createdAt"] = entity.created_at
        values["updatedAt"] = entity.updated_at

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def skip_type_checks(schema: strawberry.Schema, classes: Iterable[type]) -> None:
    """graphql-core asks ``is_type_of`` of every object whose type implements an interface,
    before completing it: for entity types, a page of 50 sessions with their students makes
    100 such calls, each answered by Strawberry's generic check (casts, generics, an
    isinstance over a tuple). Entity objects are only ever built by their own class, whose
    fields are typed, so the check cannot fail; the interface's own type resolution
    (Relay's ``node``) does not use it."""
    types = schema._schema.type_map
    for cls in classes:
        types[cls.__strawberry_definition__.name].is_type_of = None  # type: ignore[attr-defined]


@strawberry.interface(description="An entity: its id and timestamps are visible whenever it is.")
class Node:
    entity: strawberry.Private[Entity]
    id: strawberry.ID = strawberry.field(default=None)
    createdAt: datetime = strawberry.field(default=None)
    updatedAt: datetime = strawberry.field(default=None)
    localCreatedAt = local("createdAt")
    localUpdatedAt = local("updatedAt")


async def load_one(info: Info, slug: str, entity_id: Any) -> Entity | None:
    if not isinstance(entity_id, str):
        return None
    entity = await info.context.loaders.of(slug).load(entity_id)
    if entity is not None:
        info.context.limits.charge(1)
    return entity


@strawberry.type
class PageInfo:
    hasNextPage: bool = strawberry.field(
        description="More after this page (paging backward: after the before cursor)."
    )
    _page: strawberry.Private[Page[Any]]

    @strawberry.field(description="More before this page (paging forward: an after cursor).")
    def hasPreviousPage(self) -> bool:
        return self._page.has_previous_page

    @strawberry.field(description="Pass as before to page backward from here.")
    def startCursor(self) -> str | None:
        return self._page.start_cursor

    @strawberry.field(description="Pass as after to continue after this page.")
    def endCursor(self) -> str | None:
        return self._page.end_cursor


@strawberry.type
class Edge(Generic[T]):
    node: T
    _page: strawberry.Private[Page[Any]]
    _index: strawberry.Private[int]

    @strawberry.field(description="Pass as after to continue after this edge.")
    def cursor(self) -> str:
        return self._page.cursor(self._index)


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
        cls, page: Page[Any], wrap: Callable[[Any], T], count: Callable[[], Awaitable[int]]
    ) -> Connection[T]:
        """``wrap`` turns each item of the page (an entity, or a stored record) into a node."""
        return cls(
            edges=[Edge(node=wrap(e), _page=page, _index=i) for i, e in enumerate(page.items)],
            pageInfo=PageInfo(hasNextPage=page.has_next_page, _page=page),
            _count=count,
        )


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"
