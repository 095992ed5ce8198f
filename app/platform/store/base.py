"""Organization-scoped collections over a raw MongoDB-shaped backend.

Every read and write names the organization, and the organization is merged into the filter
(or stamped onto the document) here, in one place, so no caller can forget it. Backends
(``memory`` on mongomock, ``mongo`` on PyMongo's ``AsyncMongoClient``) only translate calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from opentelemetry.trace import Tracer
from pymongo.errors import DuplicateKeyError

from app.platform import metrics, tracing

ORG_FIELD = "organizationId"
T = TypeVar("T")

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
    """What a backend provides: MongoDB semantics, no organization handling. Reads hand out
    documents of the caller's own, as a driver does (new dicts and lists each time), so a
    caller may change what it read without touching the store or another reader."""

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


def and_filters(*parts: Filter | None) -> dict[str, Any]:
    """The conjunction of filters: one flat document when no field (or operator) repeats,
    else an ``$and`` of them. Flat documents let a planner see every equality at once."""
    live = [p for p in parts if p]
    merged: dict[str, Any] = {}
    for part in live:
        if merged.keys() & part.keys():
            return {"$and": [dict(p) for p in live]}
        merged.update(part)
    return merged


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

    def _tick(self) -> Tracer | None:
        """Counts a round trip (for the store, and for the request running it, if any) and
        returns the tracer while tracing is on: the only per-call cost when it is off."""
        self._stats.record(self.name)
        request = metrics.current_request.get()
        if request is not None:
            request.round_trips += 1
        return tracing.tracer

    def _traced(self, tracer: Tracer, operation: str, call: Awaitable[T]) -> Awaitable[T]:
        return tracing.store_call(tracer, self.name, operation, call)

    async def find(
        self,
        org: str,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[dict[str, Any]]:
        tracer = self._tick()
        call = self._raw.find(_scoped(org, filter), sort, limit, skip)
        return await (call if tracer is None else self._traced(tracer, "find", call))

    async def find_one(self, org: str, filter: Filter | None = None) -> dict[str, Any] | None:
        tracer = self._tick()
        call = self._raw.find_one(_scoped(org, filter))
        return await (call if tracer is None else self._traced(tracer, "find_one", call))

    async def count(self, org: str, filter: Filter | None = None) -> int:
        tracer = self._tick()
        call = self._raw.count(_scoped(org, filter))
        return await (call if tracer is None else self._traced(tracer, "count", call))

    async def distinct(self, org: str, key: str, filter: Filter | None = None) -> list[Any]:
        tracer = self._tick()
        call = self._raw.distinct(key, _scoped(org, filter))
        return await (call if tracer is None else self._traced(tracer, "distinct", call))

    async def insert_one(self, org: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        stamped = _scoped(org, doc)
        tracer = self._tick()
        call = self._raw.insert_one(stamped)
        try:
            await (call if tracer is None else self._traced(tracer, "insert_one", call))
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None
        return stamped

    async def insert_many(self, org: str, docs: Sequence[Mapping[str, Any]]) -> None:
        if not docs:
            return
        tracer = self._tick()
        call = self._raw.insert_many([_scoped(org, d) for d in docs])
        try:
            await (call if tracer is None else self._traced(tracer, "insert_many", call))
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def update_one(
        self, org: str, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> int:
        """Returns the number of matched documents (0 or 1)."""
        tracer = self._tick()
        call = self._raw.update_one(_scoped(org, filter), update, upsert)
        try:
            return await (call if tracer is None else self._traced(tracer, "update_one", call))
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def find_one_and_update(
        self, org: str, filter: Filter, update: Mapping[str, Any], *, upsert: bool = False
    ) -> dict[str, Any] | None:
        """Atomically updates one document and returns it as it is after the update."""
        tracer = self._tick()
        call = self._raw.find_one_and_update(_scoped(org, filter), update, upsert)
        try:
            return await (
                call if tracer is None else self._traced(tracer, "find_one_and_update", call)
            )
        except DuplicateKeyError as exc:
            raise DuplicateKey(str(exc)) from None

    async def delete_one(self, org: str, filter: Filter) -> int:
        tracer = self._tick()
        call = self._raw.delete_one(_scoped(org, filter))
        return await (call if tracer is None else self._traced(tracer, "delete_one", call))

    async def organizations(self, filter: Filter) -> list[str]:
        """The one cross-organization read: which organizations have matching documents
        (ids only, never data). For maintenance that must visit every organization."""
        tracer = self._tick()
        call = self._raw.distinct(ORG_FIELD, dict(filter))
        return sorted(
            await (call if tracer is None else self._traced(tracer, "organizations", call))
        )


class Store(Protocol):
    """A database: named organization-scoped collections plus index management."""

    stats: StoreStats
    persistent: bool

    def collection(self, name: str) -> Collection: ...
    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
