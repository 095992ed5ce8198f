"""In-memory backend on mongomock, for development and the test suite.

mongomock is synchronous; each call runs to completion inside the event loop, which makes a
single operation as atomic as MongoDB's document-level atomicity. Every call first yields to
the event loop, as a network round trip would, so concurrent tasks interleave between store
operations exactly where they could against a real server: a check-then-write race shows up
in tests instead of being hidden by a backend that never yields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import mongomock
from pymongo import ReturnDocument

from app.platform.store.base import Collection, Filter, IndexSpec, SortSpec, StoreStats

log = logging.getLogger(__name__)


class _MemoryRaw:
    def __init__(self, col: mongomock.Collection) -> None:
        self._col = col

    async def find(
        self, filter: Filter, sort: SortSpec | None, limit: int | None, skip: int
    ) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        cursor = self._col.find(dict(filter))
        if sort:
            cursor = cursor.sort(list(sort))
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return list(cursor)

    async def find_one(self, filter: Filter) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return self._col.find_one(dict(filter))

    async def count(self, filter: Filter) -> int:
        await asyncio.sleep(0)
        return self._col.count_documents(dict(filter))

    async def distinct(self, key: str, filter: Filter) -> list[Any]:
        await asyncio.sleep(0)
        return list(self._col.distinct(key, dict(filter)))

    async def insert_one(self, doc: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self._col.insert_one(doc)

    async def insert_many(self, docs: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0)
        self._col.insert_many(docs)

    async def update_one(self, filter: Filter, update: Mapping[str, Any], upsert: bool) -> int:
        await asyncio.sleep(0)
        result = self._col.update_one(dict(filter), dict(update), upsert=upsert)
        return result.matched_count

    async def find_one_and_update(
        self, filter: Filter, update: Mapping[str, Any], upsert: bool
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return self._col.find_one_and_update(
            dict(filter), dict(update), upsert=upsert, return_document=ReturnDocument.AFTER
        )

    async def delete_one(self, filter: Filter) -> int:
        await asyncio.sleep(0)
        return self._col.delete_one(dict(filter)).deleted_count

    async def create_index(self, spec: IndexSpec) -> None:
        await asyncio.sleep(0)
        # mongomock rebuilds (and re-checks, ignoring partial filters) an existing index;
        # MongoDB treats an identical create_index as a no-op, so skip it here too.
        if spec.index_name in self._col.index_information():
            return
        kwargs: dict[str, Any] = {"unique": spec.unique, "name": spec.index_name}
        if spec.partial:
            kwargs["partialFilterExpression"] = dict(spec.partial)
        self._col.create_index(list(spec.keys), **kwargs)


class MemoryStore:
    persistent = False

    def __init__(self, db_name: str = "tutoring") -> None:
        self._db = mongomock.MongoClient(tz_aware=True)[db_name]
        self.stats = StoreStats()
        self._collections: dict[str, Collection] = {}
        log.warning(
            "MONGODB_URL is not set: using the IN-MEMORY store. NOTHING IS PERSISTED; "
            "all data is lost when this process exits."
        )

    def collection(self, name: str) -> Collection:
        if name not in self._collections:
            self._collections[name] = Collection(name, _MemoryRaw(self._db[name]), self.stats)
        return self._collections[name]

    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None:
        for spec in specs:
            await _MemoryRaw(self._db[spec.collection]).create_index(spec)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
