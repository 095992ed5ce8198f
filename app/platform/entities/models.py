"""What the entity service hands out: masked entities and pages of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Entity:
    """An entity as one actor may see it: ``data`` holds only the visible fields."""

    id: str
    type: str
    data: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    visible: frozenset[str] = field(default_factory=frozenset)

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
class Page:
    items: list[Entity]
    cursors: list[str]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None
