"""An organization's version: a counter bumped by every write that changes what API processes
cache about it (types, roles, limits, user links; see ``app.platform.org_state``)."""

from __future__ import annotations

from app.platform.store import IndexSpec, Store

VERSIONS_COLLECTION = "org_versions"
VERSION_INDEXES = (IndexSpec(VERSIONS_COLLECTION, (("organizationId", 1), ("_id", 1))),)


class OrgVersions:
    def __init__(self, store: Store) -> None:
        self._col = store.collection(VERSIONS_COLLECTION)

    async def current(self, org: str) -> int:
        doc = await self._col.find_one(org, {"_id": org})
        return int(doc["version"]) if doc else 0

    async def bump(self, org: str) -> None:
        """Called after a write that changes cached state. A bump that was not needed only
        costs the next request a reload, so compensations never take one back."""
        await self._col.update_one(org, {"_id": org}, {"$inc": {"version": 1}}, upsert=True)
