"""In-memory backend on mongomock, for development and the test suite.

mongomock is synchronous; each call runs to completion inside the event loop, which makes a
single operation as atomic as MongoDB's document-level atomicity. Every call first yields to
the event loop, as a network round trip would, so concurrent tasks interleave between store
operations exactly where they could against a real server: a check-then-write race shows up
in tests instead of being hidden by a backend that never yields.

mongomock answers every query by scanning its whole collection in Python, so a request's cost
would grow with everything the service holds. Two things keep it to what a query needs, the
way MongoDB's indexes do:

- **Partitions.** Each collection is split by organization (and the entity collection also by
  type), into separate mongomock collections: a query for one organization's sessions never
  looks at students, at payments, or at another organization. Every store call names its
  organization (``Collection`` guarantees it), and entity queries name their type.
- **Hash indexes from the declared indexes.** For each declared index, the first key after the
  partition keys (``data.teacherId``, ``resource``, ``key`` ...) gets a hash map from value to
  document ids, as does ``_id``. A query with an equality (or ``$in``) on such a key scans only
  those documents; mongomock still applies the whole filter, so results are exactly
  mongomock's. Only declared indexes help -- as in MongoDB, a query pattern without an index
  is a scan.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

import mongomock
from bson import ObjectId
from mongomock import filtering, helpers
from mongomock.store import CollectionStore
from pymongo import ReturnDocument

from app.platform.store.base import ORG_FIELD, Collection, Filter, IndexSpec, SortSpec, StoreStats

log = logging.getLogger(__name__)

TYPED_COLLECTIONS = frozenset({"entities"})  # partitioned by type as well
_MISSING = object()
_NONE: frozenset[Any] = frozenset()
_PRESENT = object()  # the index entry of every document that has the field at all


def _value_at(doc: Mapping[str, Any], path: str, missing: Any = None) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return missing
        value = value[part]
    return value


def _values_at(docs: list[dict[str, Any]], path: str) -> list[Any]:
    """The value at a plain dotted ``path`` of each document, ``_MISSING`` where it has none.
    A scope's relational look-up reads one id from each of a user's documents on every
    request, so the usual two-part path (``data.studentId``) is one comprehension."""
    parts = path.split(".")
    if len(parts) == 2:
        outer, inner = parts
        try:  # every document holds a sub-document there (an entity's data)
            return [d[outer].get(inner, _MISSING) for d in docs]
        except (KeyError, AttributeError, TypeError):
            return [
                sub.get(inner, _MISSING) if isinstance(sub := d.get(outer), dict) else _MISSING
                for d in docs
            ]
    return [_value_at(d, path, _MISSING) for d in docs]


def _hashable(value: Any) -> bool:
    return isinstance(value, Hashable) and not isinstance(value, bool | float) and value is not None


def _indexable(value: Any) -> bool:
    """Strings and ObjectIds: values whose equality is exact in MongoDB and in Python (no
    1 == 1.0 == True), so an index lookup finds exactly what the query matches."""
    return isinstance(value, str | ObjectId)


def _keys(value: Any) -> list[Any]:
    """Index entries for a stored value (each element of an array, as MongoDB's multikey)."""
    if isinstance(value, list):
        return [v for v in value if _indexable(v)]
    return [value] if _indexable(value) else []


class _TrackedStore(CollectionStore):
    """mongomock's document store, noting every document it stores: those are candidates
    for every query until the partition has (re)indexed them -- mongomock checks unique
    indexes on a document it has just stored, before our index can know its values."""

    pending: set[Any]

    def __setitem__(self, key: Any, val: Any) -> None:
        super().__setitem__(key, val)
        self.pending.add(key)


class _Partition:
    """One mongomock collection plus hash indexes over some of its fields."""

    def __init__(self, col: mongomock.Collection, fields: set[str], key: dict[str, Any]) -> None:
        self.col = col
        self.key_values = key  # the partition's own values of the partition keys
        col._store.__class__ = _TrackedStore
        col._store.pending = set()
        self.pending: set[Any] = col._store.pending
        self.fields = {"_id", *fields}
        self._index: dict[str, dict[Any, set[Any]]] = {f: {} for f in self.fields}
        self._entries: dict[Any, dict[str, list[Any]]] = {}
        self._order: dict[Any, int] = {}
        self._counter = itertools.count()
        col._iter_documents = self._iter_documents  # mongomock's one scan point

    def add_field(self, path: str) -> None:
        if path in self.fields:
            return
        self.fields.add(path)
        self._index[path] = {}
        for doc_id in list(self._entries):
            self.reindex(doc_id)

    # -- maintenance --------------------------------------------------------------------

    def reindex(self, doc_id: Any) -> None:
        self.unindex(doc_id)
        self.pending.discard(doc_id)
        doc = self.col._store._documents.get(doc_id)
        if doc is None:
            return
        self._order.setdefault(doc_id, next(self._counter))
        entries = {}
        for path in self.fields:
            if path == "_id":
                keys = [doc_id]
            else:
                value = _value_at(doc, path, _MISSING)
                keys = [] if value is _MISSING else [_PRESENT, *_keys(value)]
            for key in keys:
                self._index[path].setdefault(key, set()).add(doc_id)
            entries[path] = keys
        self._entries[doc_id] = entries

    def unindex(self, doc_id: Any) -> None:
        for path, keys in self._entries.pop(doc_id, {}).items():
            bucket = self._index[path]
            for key in keys:
                ids = bucket.get(key)
                if ids is not None:
                    ids.discard(doc_id)
                    if not ids:
                        del bucket[key]
        if doc_id not in self.col._store._documents:
            self._order.pop(doc_id, None)

    # -- queries ------------------------------------------------------------------------

    def candidates(self, filter: Mapping[str, Any]) -> tuple[AbstractSet[Any] | None, bool]:
        """Ids that may match ``filter`` (None: every document may), and whether they match
        it exactly: every condition of the filter (and of its top-level ``$and``) is an
        indexed lookup or the partition itself, so the index answers the whole query."""
        found: AbstractSet[Any] | None = None
        exact = True
        conjuncts = [filter, *(c for c in filter.get("$and", ()) if isinstance(c, Mapping))]
        for condition in conjuncts:
            for path, wanted in condition.items():
                if path == "$and" and condition is filter:
                    continue
                ids = self._lookup(path, wanted) if path in self.fields else None
                if ids is None:  # only this partition's own key is answered without a scan
                    exact = exact and self.key_values.get(path, _MISSING) == wanted
                    continue
                found = ids if found is None else found & ids
        return found, exact and found is not None

    def _lookup(self, path: str, wanted: Any) -> AbstractSet[Any] | None:
        """The ids of the documents whose ``path`` holds ``wanted`` (None: the index cannot
        tell). The index's own set may come back: callers only read it."""
        bucket = self._index[path]
        if isinstance(wanted, Mapping) and wanted == {"$exists": True}:
            return bucket.get(_PRESENT, _NONE)  # e.g. a partial unique index's condition
        if isinstance(wanted, Mapping):
            values = wanted.get("$in") if set(wanted) == {"$in"} else None
            if not isinstance(values, list) or not all(_indexable(v) for v in values):
                return None
            out: set[Any] = set()
            for v in values:
                out |= bucket.get(v, _NONE)
            return out
        if not _indexable(wanted):
            return None
        return bucket.get(wanted, _NONE)

    def iter_documents(
        self, filter: Mapping[str, Any], ordered: bool = True
    ) -> Iterator[dict[str, Any]]:
        """The stored documents matching ``filter`` (given in stored form: naive UTC), in
        insertion order unless the caller does not care (counts, distinct values)."""
        return self._iter_documents(filter, ordered)

    def _iter_documents(
        self, filter: Mapping[str, Any], ordered: bool = True
    ) -> Iterator[dict[str, Any]]:
        documents = self.col._store._documents
        ids, exact = self.candidates(filter)
        if ids is None:
            docs = list(documents.values())
        else:
            pending = {i for i in self.pending if i in documents}
            order = self._order
            if pending:
                ids = ids | pending
                docs = [documents[i] for i in sorted(ids, key=lambda i: order.get(i, -1))]
            elif ordered:
                docs = [documents[i] for i in sorted(ids, key=order.__getitem__)]
            else:
                docs = [documents[i] for i in ids]
            if exact and not pending:
                return iter(docs)
        return (d for d in docs if filtering.filter_applies(filter, d))

    def first_match(self, filter: Mapping[str, Any]) -> Any:
        """The id of the document an update of ``filter`` will change, marked as pending:
        mongomock changes it in place, so the index must not trust its old values."""
        stored_form = helpers.patch_datetime_awareness_in_document(filter)  # naive UTC, as stored
        doc_id = next(iter(self._iter_documents(stored_form)), {}).get("_id")
        if doc_id is not None:
            self.pending.add(doc_id)
        return doc_id


class _PartitionedRaw:
    """A logical collection over partitions; the ``RawCollection`` the store hands out."""

    def __init__(self, db: mongomock.Database, name: str) -> None:
        self._db = db
        self._name = name
        self._keys = (ORG_FIELD, "type") if name in TYPED_COLLECTIONS else (ORG_FIELD,)
        self._parts: dict[tuple[Any, ...], _Partition] = {}
        self._specs: dict[str, IndexSpec] = {}

    # -- partitions -----------------------------------------------------------------------

    def _part(self, key: tuple[Any, ...]) -> _Partition:
        part = self._parts.get(key)
        if part is None:
            col = self._db[f"{self._name}|{len(self._parts)}"]
            part = _Partition(col, set(), dict(zip(self._keys, key, strict=True)))
            for spec in self._specs.values():
                self._apply(part, spec)
            self._parts[key] = part
        return part

    def _route(self, filter: Mapping[str, Any]) -> list[_Partition]:
        """The partitions a filter can match: all when it names no organization (the one
        cross-organization read) or, in a typed collection, no single type."""
        key = []
        conjuncts = [c for c in filter.get("$and", ()) if isinstance(c, Mapping)]
        for field in self._keys:
            value = filter.get(field)
            if value is None:  # a partition key may sit in a top-level $and
                value = next((c[field] for c in conjuncts if isinstance(c.get(field), str)), None)
            if not isinstance(value, str):
                prefix = tuple(key)
                return [p for k, p in self._parts.items() if k[: len(prefix)] == prefix]
            key.append(value)
        part = self._parts.get(tuple(key))
        return [part] if part is not None else []

    def _home(self, doc: Mapping[str, Any]) -> _Partition:
        return self._part(tuple(doc.get(field) for field in self._keys))

    def _apply(self, part: _Partition, spec: IndexSpec) -> None:
        kwargs: dict[str, Any] = {"unique": spec.unique, "name": spec.index_name}
        if spec.partial:
            kwargs["partialFilterExpression"] = dict(spec.partial)
        part.col.create_index(list(spec.keys), **kwargs)
        rest = [k for k, _ in spec.keys if k not in self._keys]
        if rest:
            part.add_field(rest[0])

    def all_documents(self) -> list[dict[str, Any]]:
        return [dict(d) for p in self._parts.values() for d in p.col.find({})]

    def replace_all(self, docs: list[dict[str, Any]]) -> None:
        for part in self._parts.values():
            for doc_id in list(part.col._store._documents):
                part.col.delete_one({"_id": doc_id})
                part.unindex(doc_id)
        for doc in docs:
            part = self._home(doc)
            part.col.insert_one(dict(doc))
            part.reindex(doc["_id"])

    # -- RawCollection ----------------------------------------------------------------------

    async def find(
        self, filter: Filter, sort: SortSpec | None, limit: int | None, skip: int
    ) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return self._select(filter, sort, limit, skip)

    def _select(
        self, filter: Filter, sort: SortSpec | None, limit: int | None, skip: int = 0
    ) -> list[dict[str, Any]]:
        """Matching documents, sorted, paged and copied out -- mongomock's semantics, but
        only the returned documents are copied, once."""
        docs = self._matches(filter)
        for key, direction in reversed(list(sort or ())):
            docs.sort(key=_sort_key(key, docs), reverse=direction < 0)
        docs = docs[skip : skip + limit] if limit else docs[skip:]
        return [_export(d) for d in docs]

    def _matches(self, filter: Filter, ordered: bool = True) -> list[dict[str, Any]]:
        """The stored documents (not copies) that match ``filter``, in insertion order
        unless ``ordered`` is false."""
        stored_form = helpers.patch_datetime_awareness_in_document(dict(filter))
        parts = self._route(filter)
        return [d for part in parts for d in part.iter_documents(stored_form, ordered)]

    async def find_one(self, filter: Filter) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        found = self._select(filter, None, 1)
        return found[0] if found else None

    async def count(self, filter: Filter) -> int:
        await asyncio.sleep(0)
        return len(self._matches(filter, ordered=False))

    async def distinct(self, key: str, filter: Filter) -> list[Any]:
        await asyncio.sleep(0)
        values = _values_at(self._matches(filter, ordered=False), key)
        try:  # the usual case, ids: one pass in C
            distinct = dict.fromkeys(values)
        except TypeError:  # arrays or sub-documents among them
            distinct = None
        if distinct is not None and all(type(v) is str or v is _MISSING for v in distinct):
            distinct.pop(_MISSING, None)
            return list(distinct)
        seen: dict[Any, None] = {}
        unhashable: list[Any] = []
        for value in values:
            if type(value) is str:  # the usual case: an id
                seen[value] = None
                continue
            for item in value if isinstance(value, list) else [value]:
                if item is _MISSING:
                    continue
                if _hashable(item) or isinstance(item, bool | float):
                    seen.setdefault(item, None)
                elif item not in unhashable:
                    unhashable.append(item)
        return [_export(v) for v in [*seen, *unhashable]]

    async def insert_one(self, doc: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        part = self._home(doc)
        part.col.insert_one(doc)
        part.reindex(doc["_id"])

    async def insert_many(self, docs: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0)
        groups: dict[int, tuple[_Partition, list[dict[str, Any]]]] = {}
        for doc in docs:
            part = self._home(doc)
            groups.setdefault(id(part), (part, []))[1].append(doc)
        for part, group in groups.values():
            part.col.insert_many(group)
            for doc in group:
                part.reindex(doc["_id"])

    async def update_one(self, filter: Filter, update: Mapping[str, Any], upsert: bool) -> int:
        await asyncio.sleep(0)
        parts = self._route(filter)
        for part in parts:
            target = part.first_match(filter)
            if target is None:
                continue
            result = part.col.update_one(dict(filter), dict(update))
            part.reindex(target)
            return result.matched_count
        if upsert:
            part = self._upsert_home(filter)
            result = part.col.update_one(dict(filter), dict(update), upsert=True)
            if result.upserted_id is not None:
                part.reindex(result.upserted_id)
        return 0

    async def find_one_and_update(
        self, filter: Filter, update: Mapping[str, Any], upsert: bool
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        for part in self._route(filter):
            if part.first_match(filter) is None:
                continue
            return self._apply_update(part, filter, update, upsert=False)
        if upsert:
            return self._apply_update(self._upsert_home(filter), filter, update, upsert=True)
        return None

    def _apply_update(
        self, part: _Partition, filter: Filter, update: Mapping[str, Any], *, upsert: bool
    ) -> dict[str, Any] | None:
        doc = part.col.find_one_and_update(
            dict(filter), dict(update), upsert=upsert, return_document=ReturnDocument.AFTER
        )
        if doc is not None:
            part.reindex(doc["_id"])
        return doc

    def _upsert_home(self, filter: Filter) -> _Partition:
        key = tuple(filter.get(field) for field in self._keys)
        if not all(isinstance(k, str) for k in key):
            raise ValueError(f"an upsert into {self._name} must name {', '.join(self._keys)}")
        return self._part(key)

    async def delete_one(self, filter: Filter) -> int:
        await asyncio.sleep(0)
        for part in self._route(filter):
            target = part.first_match(filter)
            if target is None:
                continue
            deleted = part.col.delete_one({"_id": target}).deleted_count
            part.unindex(target)
            return deleted
        return 0

    async def create_index(self, spec: IndexSpec) -> None:
        await asyncio.sleep(0)
        # MongoDB treats an identical create_index as a no-op; mongomock would rebuild it.
        if spec.index_name in self._specs:
            return
        self._specs[spec.index_name] = spec
        for part in self._parts.values():
            self._apply(part, spec)


_PLAIN = (str, datetime, int)


def _sort_key(
    key: str, docs: list[dict[str, Any]] | None = None
) -> Callable[[dict[str, Any]], Any]:
    """mongomock's BSON ordering; when every document holds a value of one plain type at
    ``key`` (the usual case: ids, times), that value itself orders them the same way."""
    if docs:
        parts = key.split(".")

        def plain(doc: dict[str, Any]) -> Any:
            value: Any = doc
            for part in parts:
                value = value.get(part) if isinstance(value, dict) else None
            return value

        values = [plain(d) for d in docs]
        kind = type(values[0])
        if kind in _PLAIN and all(type(v) is kind for v in values):
            by_id = {id(d): v for d, v in zip(docs, values, strict=True)}
            return lambda doc: by_id[id(doc)]
    return lambda doc: filtering.resolve_sort_key(key, doc)


# A copy of a stored document as the client returns it: datetimes aware (UTC), like the
# tz_aware MongoDB client; dicts and lists copied, scalars shared (they are immutable).
_export = helpers.make_datetime_timezone_aware_in_document


class MemoryStore:
    persistent = False

    def __init__(self, db_name: str = "tutoring") -> None:
        self._db = mongomock.MongoClient(tz_aware=True)[db_name]
        self.stats = StoreStats()
        self._raw: dict[str, _PartitionedRaw] = {}
        self._collections: dict[str, Collection] = {}
        log.warning(
            "MONGODB_URL is not set: using the IN-MEMORY store. NOTHING IS PERSISTED; "
            "all data is lost when this process exits."
        )

    def _raw_collection(self, name: str) -> _PartitionedRaw:
        if name not in self._raw:
            self._raw[name] = _PartitionedRaw(self._db, name)
        return self._raw[name]

    def collection(self, name: str) -> Collection:
        if name not in self._collections:
            self._collections[name] = Collection(name, self._raw_collection(name), self.stats)
        return self._collections[name]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every document of every collection (for tests that snapshot and restore)."""
        return {name: raw.all_documents() for name, raw in self._raw.items()}

    def load(self, state: Mapping[str, list[dict[str, Any]]]) -> None:
        """Replaces every collection's documents with ``state`` (see ``dump``)."""
        for name, raw in self._raw.items():
            raw.replace_all(state.get(name, []))

    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None:
        for spec in specs:
            await self._raw_collection(spec.collection).create_index(spec)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
