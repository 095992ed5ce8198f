"""What the entity service hands out: masked entities and pages of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")


class Entity(NamedTuple):
    """An entity as one actor may see it: ``data`` holds only the visible fields. Immutable,
    and a tuple: every read of a page builds one per row, so it must be cheap to make."""

    id: str
    type: str
    data: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    visible: frozenset[str] = frozenset()

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when it is absent or hidden from this actor."""
        return self.data.get(name, default)

    def can_see(self, name: str) -> bool:
        return name in self.visible


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of entities (or of the platform's own records: audit entries, jobs). Cursors
    are encoded from the items, and only when asked for: a page whose cursors nobody reads
    (most screens) does not pay for them."""

    items: list[T]
    has_next_page: bool = False
    encode: Callable[[T], str] | None = None
    has_previous_page: bool = False

    def cursor(self, index: int) -> str:
        assert self.encode is not None
        return self.encode(self.items[index])

    @property
    def cursors(self) -> list[str]:
        return [self.cursor(i) for i in range(len(self.items))]

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(0) if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(len(self.items) - 1) if self.items else None


class Link(NamedTuple):
    """A relation the system follows on the caller's behalf: the entities whose ``field``
    points at ``parent``, an entity the caller has already been given (so may read). Its
    filter is not the caller's and is not judged like one; instead only the caller's roles
    that show ``field`` reach the children (``Access.link_scope``)."""

    field: str
    parent: Entity
