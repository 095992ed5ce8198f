"""MongoDB backend on PyMongo's async API (``AsyncMongoClient``).

Motor reached end of life on 2026-05-14; PyMongo's async API is its official successor.
This module only translates calls: every rule lives above the store interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from app.platform.store.base import Collection, Filter, IndexSpec, SortSpec, StoreStats


class _MongoRaw:
    def __init__(self, col: AsyncCollection) -> None:
        self._col = col

    async def find(
        self, filter: Filter, sort: SortSpec | None, limit: int | None, skip: int
    ) -> list[dict[str, Any]]:
        cursor = self._col.find(dict(filter), sort=list(sort) if sort else None, skip=skip)
        if limit:
            cursor = cursor.limit(limit)
        return await cursor.to_list()

    async def find_one(self, filter: Filter) -> dict[str, Any] | None:
        return await self._col.find_one(dict(filter))

    async def count(self, filter: Filter) -> int:
        return await self._col.count_documents(dict(filter))

    async def distinct(self, key: str, filter: Filter) -> list[Any]:
        return list(await self._col.distinct(key, dict(filter)))

    async def insert_one(self, doc: dict[str, Any]) -> None:
        await self._col.insert_one(doc)

    async def insert_many(self, docs: list[dict[str, Any]]) -> None:
        await self._col.insert_many(docs)

    async def update_one(self, filter: Filter, update: Mapping[str, Any], upsert: bool) -> int:
        result = await self._col.update_one(dict(filter), dict(update), upsert=upsert)
        return result.matched_count

    async def find_one_and_update(
        self, filter: Filter, update: Mapping[str, Any], upsert: bool
    ) -> dict[str, Any] | None:
        return await self._col.find_one_and_update(
            dict(filter), dict(update), upsert=upsert, return_document=ReturnDocument.AFTER
        )

    async def delete_one(self, filter: Filter) -> int:
        return (await self._col.delete_one(dict(filter))).deleted_count

    async def create_index(self, spec: IndexSpec) -> None:
        kwargs: dict[str, Any] = {"unique": spec.unique, "name": spec.index_name}
        if spec.partial:
            kwargs["partialFilterExpression"] = dict(spec.partial)
        await self._col.create_index(list(spec.keys), **kwargs)


class MongoStore:
    persistent = True

    def __init__(self, url: str, db_name: str, *, timeout_ms: int = 5000) -> None:
        # Fail a call after a few seconds without a reachable server rather than PyMongo's
        # default 30 s: requests answer, /readyz turns 503, start-up retries visibly.
        self._client: AsyncMongoClient = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
        )
        self._db = self._client[db_name]
        self.stats = StoreStats()
        self._collections: dict[str, Collection] = {}

    def collection(self, name: str) -> Collection:
        if name not in self._collections:
            self._collections[name] = Collection(name, _MongoRaw(self._db[name]), self.stats)
        return self._collections[name]

    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None:
        for spec in specs:
            await _MongoRaw(self._db[spec.collection]).create_index(spec)

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()
