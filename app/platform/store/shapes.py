"""Query shapes, and whether a declared index serves them (MongoDB's ESR rule).

No MongoDB runs where this service is built, so "every query is served by an index" is
checked on the queries themselves: the test suite records the shape of every filter and sort
the service sends, and each must be covered by an index the platform or a pack declares --
its equality fields first (in any order), then its sort fields in order, then its range
fields. A query by ``_id`` is always served (the primary key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.platform.store.base import ORG_FIELD, IndexSpec

# Operators that select one value (or a few, for $in) like an equality does.
_EQUALITY_OPS = frozenset({"$eq", "$in"})


@dataclass(frozen=True)
class QueryShape:
    collection: str
    equality: frozenset[str]
    sort: tuple[str, ...]
    range: frozenset[str]

    def __str__(self) -> str:
        parts = [f"eq({', '.join(sorted(self.equality))})"]
        if self.sort:
            parts.append(f"sort({', '.join(self.sort)})")
        if self.range:
            parts.append(f"range({', '.join(sorted(self.range))})")
        return f"{self.collection}: {' '.join(parts)}"


def shapes(
    collection: str, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]] | None = None
) -> list[QueryShape]:
    """One shape per way MongoDB would plan the query: each branch of a top-level ``$or``
    needs an index of its own."""
    equality: set[str] = set()
    ranges: set[str] = set()
    branches: list[Mapping[str, Any]] = []
    _collect(filter, equality, ranges, branches)
    order = tuple(k for k, _ in sort or () if k != "_id")
    if not branches:
        return [QueryShape(collection, frozenset(equality), order, frozenset(ranges - equality))]
    out = []
    for branch in branches:
        eq, rg = set(equality), set(ranges)
        _collect(branch, eq, rg, [])
        out.append(QueryShape(collection, frozenset(eq), order, frozenset(rg - eq)))
    return out


def _collect(
    filter: Mapping[str, Any], equality: set[str], ranges: set[str], branches: list[Any]
) -> None:
    for key, value in filter.items():
        if key == "$and":
            for part in value:
                _collect(part, equality, ranges, branches)
        elif key == "$or":
            branches.extend(value)
        elif key.startswith("$"):
            ranges.add(key)  # $expr and the like: evaluated per document
        elif isinstance(value, Mapping) and any(k.startswith("$") for k in value):
            (equality if set(value) <= _EQUALITY_OPS else ranges).add(key)
        else:
            equality.add(key)


def covers(index: IndexSpec, shape: QueryShape, selective: frozenset[str]) -> bool:
    """ESR: the index leads with equality fields of the query -- the organization, the
    partition's type, and one of the query's *selective* fields when it has any (the fields
    declared indexes look documents up by: references, user links, keys, statuses) -- then
    holds the query's sort in order, so no query reads more than it selects and none sorts in
    memory. Further equalities and ranges filter what the index found. A query by ``_id`` is
    served by the primary key."""
    keys = [k for k, _ in index.keys]
    if "_id" in shape.equality or (index.unique and set(keys) <= shape.equality):
        return True  # one document, by the primary key or a unique index
    if ORG_FIELD not in shape.equality:
        # A cross-organization maintenance read (which organizations have queued messages):
        # served by scanning an index that holds its fields after the organization.
        return (set(shape.equality) | set(shape.sort)) <= set(keys)
    prefix: list[str] = []
    for key in keys:
        if key not in shape.equality:
            break
        prefix.append(key)
    wanted = shape.equality & selective
    if wanted and not wanted & set(prefix):
        return False
    if "type" in shape.equality and "type" not in prefix:
        return False
    sort = [k for k in shape.sort if k not in shape.equality]
    return keys[len(prefix) : len(prefix) + len(sort)] == sort


def uncovered(shapes_seen: Iterable[QueryShape], indexes: Iterable[IndexSpec]) -> list[QueryShape]:
    """The shapes no index of their collection serves."""
    by_collection: dict[str, list[IndexSpec]] = {}
    for spec in indexes:
        by_collection.setdefault(spec.collection, []).append(spec)
    selective = {
        name: frozenset(_lookup_key(i) for i in specs) - {None}
        for name, specs in by_collection.items()
    }
    missing = [
        s
        for s in set(shapes_seen)
        if not any(
            covers(i, s, selective.get(s.collection, frozenset()))  # type: ignore[arg-type]
            for i in by_collection.get(s.collection, [])
        )
    ]
    return sorted(missing, key=str)


_PARTITION = (ORG_FIELD, "type")
_TIMES = ("createdAt", "updatedAt", "at", "runAt")


def _lookup_key(spec: IndexSpec) -> str | None:
    """The field a declared index looks documents up by: its first key after the
    organization (and type), unless that is a time to order by."""
    for key, _ in spec.keys:
        if key not in _PARTITION:
            return None if key in _TIMES or key == "_id" else key
    return None
