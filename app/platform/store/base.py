"""Organization-scoped collections over a raw MongoDB-shaped backend.

Every read and write names the organization, and the organization is merged into the filter
(or stamped onto the document) here, in one place, so no caller can forget it. Backends
(``memory`` on mongomock, ``mongo`` on PyMongo's ``AsyncMongoClient``) only translate calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymongo.errors import DuplicateKeyError

ORG_FIELD = "organizationId"

Filter = Mapping[str, Any]
SortSpec = Sequence[tuple[str, int]]


class DuplicateKey(Exception):
    """A write hit a unique index; callers turn this into a domain ``CONFLICT``."""


@dataclass(frozen=True)
class IndexSpec:
    """An index a module's query pattern needs; all start with the organization."""

    collection: str
    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    partial: Mapping[str, Any] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.keys or self.keys[0][0] != ORG_FIELD:
            raise ValueError(f"index on {self.collection} must start with {ORG_FIELD}")

    @property
    def index_name(self) -> str:
        return self.name or "_".join(f"{k}_{d}" for k, d in self.keys).replace(".", "-")


class RawCollection(Protocol):
    """What a backend provides: MongoDB semantics, no organization handling."""

    async def find(
        self, filter: Filter, sort: SortSpec | None, limit: int | None, skip: int
    ) -> list[dict[str, Any]]: ...
    async def find_one(self, filter: Filter) -> dict[str, Any] | None: ...
    async def count(self, filter: Filter) -> int: ...
    async def distinct(self, key: str, filter: Filter) -> list[Any]: ...
    async def insert_one(self, doc: dict[str, Any]) -> None: ...
    async def insert_many(self, docs: list[dict[str, Any]]) -> None: ...
    async def update_one(self, filter: Filter, update: Mapping[str, Any], upsert: bool) -> int: ...
    async def find_one_and_update(
        self, filter: Filter, update: Mapping[str, Any], upsert: bool
    ) -> dict[str, Any] | None: ...
    async def delete_one(self, filter: Filter) -> int: ...
    async def create_index(self, spec: IndexSpec) -> None: ...


@dataclass
class StoreStats:
    """Round trips to the backend; tests use it to prove batching (no N+1)."""

    round_trips: int = 0
    by_collection: dict[str, int] = field(default_factory=dict)

    def record(self, collection: str) -> None:
        self.round_trips += 1
        self.by_collection[collection] = self.by_collection.get(collection, 0) + 1


def _scoped(org: str, filter: Filter | None) -> dict[str, Any]:
    if not org:
        raise ValueError("every store call needs an organization id")
    if filter and ORG_FIELD in filter and filter[ORG_FIELD] != org:
        raise ValueError("filter names a different organization")
    return {**(filter or {}), ORG_FIELD: org}


class Collection:
    """A collection whose every operation is confined to one organization."""

    def __init__(self, name: str, raw: RawCollection, stats: StoreStats) -> None:
        self.name = name
        self._raw = raw
        self._stats = stats

    def _tick(self) -> None:
        self._stats.record(self.name)

    async def find(
        self,
        org: str,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[dict[str, Any]]:
        self._tick()
        return await self._raw.find(_scoped(org, filter), sort, limit, skip)

    async def find_one(self, org: str, filter: Filter | None = None) -> dict[str, Any] | None:
        self._tick()
        return await self._raw.find_one(_scoped(org, filter))

    async def count(self, org: str, filter: Filter | None = None) -> int:
        self._tick()
        return await self._raw.count(_scoped(org, filter))

    async def distinct(self, org: str, key: str, filter: Filter | None = None) -> list[Any]:
        self._tick()
        return await self._raw.distinct(key, _scoped(org, filter))

    async def insert_one(self, org: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        stamped = _scoped(org, doc)
        self._tick()
        try:
            await self._raw.insert_one(stamped)
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None
        return stamped

    async def insert_many(self, org: str, docs: Sequence[Mapping[str, Any]]) -> None:
        if not docs:
            return
        self._tick()
        try:
            await self._raw.insert_many([_scoped(org, d) for d in docs])
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def update_one(
        self, org: str, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> int:
        """Returns the number of matched documents (0 or 1)."""
        self._tick()
        try:
            return await self._raw.update_one(_scoped(org, filter), update, upsert)
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def find_one_and_update(
        self, org: str, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> dict[str, Any] | None:
        """Atomically updates one document and returns it as it is after the update."""
        self._tick()
        try:
            return await self._raw.find_one_and_update(_scoped(org, filter), update, upsert)
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def delete_one(self, org: str, filter: Filter) -> int:
        self._tick()
        return await self._raw.delete_one(_scoped(org, filter))

    async def organizations(self, filter: Filter) -> list[str]:
        """The one cross-organization read: which organizations have matching documents
        (ids only, never data). For maintenance that must visit every organization."""
        self._tick()
        return sorted(await self._raw.distinct(ORG_FIELD, dict(filter)))


class Store(Protocol):
    """A database: named organization-scoped collections plus index management."""

    stats: StoreStats
    persistent: bool

    def collection(self, name: str) -> Collection: ...
    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
