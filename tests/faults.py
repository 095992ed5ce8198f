"""Fault injection at the store interface: the n-th write of an operation fails.

``Faults.install(store)`` wraps every collection's backend so that writes (inserts, updates,
deletes) are counted and the one numbered ``fail_at`` raises the error a lost MongoDB
connection raises. ``snapshot`` reads back everything a user could see, so a test can check
that a failed operation left the store as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import AutoReconnect

from app.platform.store.memory import MemoryStore

WRITES = ("insert_one", "insert_many", "update_one", "find_one_and_update", "delete_one")
# Bookkeeping a compensated write may leave moved: versions and the time of the last change.
VOLATILE = ("_v", "updatedAt", "updatedBy")


class InjectedFault(AutoReconnect):
    pass


class _FaultyRaw:
    def __init__(self, raw: Any, faults: Faults, collection: str) -> None:
        self._raw = raw
        self._faults = faults
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._raw, name)
        if name not in WRITES:
            return target

        async def write(*args: Any, **kwargs: Any) -> Any:
            self._faults.tick(name, self._collection)
            return await target(*args, **kwargs)

        return write


class Faults:
    def __init__(self) -> None:
        self.fail_at: int | None = None
        self.writes: list[tuple[str, str]] = []

    def install(self, store: MemoryStore) -> None:
        original = store.collection

        def collection(name: str) -> Any:
            col = original(name)
            if not isinstance(col._raw, _FaultyRaw):
                col._raw = _FaultyRaw(col._raw, self, name)
            return col

        store.collection = collection  # type: ignore[method-assign]
        for name in list(store._collections):
            collection(name)

    def reset(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.writes = []

    def tick(self, op: str, collection: str) -> None:
        self.writes.append((op, collection))
        if self.fail_at is not None and len(self.writes) == self.fail_at:
            raise InjectedFault(f"injected failure of write {self.fail_at} ({op} {collection})")


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in VOLATILE}
    internal = {k: v for k, v in (out.pop("internal", None) or {}).items() if v != []}
    if internal:  # an emptied bookkeeping list is no list
        out["internal"] = internal
    return out


def snapshot(store: MemoryStore) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, minus bookkeeping; an empty calendar counts as
    no calendar (it blocks nothing and is created on first use)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, found in sorted(store.dump().items()):
        docs = [_clean(d) for d in found]
        if name == "calendars":
            docs = [d for d in docs if d.get("intervals")]
        if docs:
            out[name] = sorted(docs, key=lambda d: str(d.get("_id")))
    return out


def raw_state(store: MemoryStore) -> dict[str, list[dict[str, Any]]]:
    """Everything, as stored (for ``restore``)."""
    return store.dump()


def restore(store: MemoryStore, state: dict[str, list[dict[str, Any]]]) -> None:
    store.load(state)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Readable differences between two snapshots."""
    lines = []
    for name in sorted(set(before) | set(after)):
        a = {str(d["_id"]): d for d in before.get(name, [])}
        b = {str(d["_id"]): d for d in after.get(name, [])}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                lines.append(f"{name}/{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return lines


Operation = Callable[[], Awaitable[Any]]
