"""The audit trail: who changed which fields of which entity, and when.

Entries name changed fields, never their values, so the trail can be shown to auditors
without re-exposing masked data. Reading it is a permission of its own (``AUDIT_RESOURCE``,
action ``list``), which a pack's roles grant as data; the admin console reads it in pages
(``app.platform.console``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bson import ObjectId

from app.platform.actor import Actor
from app.platform.store import IndexSpec, Store
from app.platform.undo import compensating, register

AUDIT_COLLECTION = "audit"
AUDIT_RESOURCE = "auditLog"
AUDIT_INDEXES = (
    IndexSpec(AUDIT_COLLECTION, (("organizationId", 1), ("entityId", 1), ("at", 1))),
    IndexSpec(AUDIT_COLLECTION, (("organizationId", 1), ("actor.userId", 1), ("at", 1))),
    # The console's pages, newest first: the whole trail, and one entity type's.
    IndexSpec(AUDIT_COLLECTION, (("organizationId", 1), ("at", 1))),
    IndexSpec(AUDIT_COLLECTION, (("organizationId", 1), ("entityType", 1), ("at", 1))),
)


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._col = store.collection(AUDIT_COLLECTION)

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        at: datetime,
        entity_type: str | None = None,
        entity_id: str | None = None,
        fields: Iterable[str] = (),
        extra: dict[str, Any] | None = None,
    ) -> str | None:
        """Writes the entry and returns its id. Writers record before they write and take
        the entry back if the write fails (or the operation around it is undone): never a
        trail of changes that did not happen, never a change without its entry.
        Compensations write no entries; they take back the ones they undo."""
        if compensating():
            return None
        entry_id = str(ObjectId())
        await self._col.insert_one(
            actor.organization_id,
            {
                "_id": entry_id,
                "at": at,
                "actor": actor.audit_dict(),
                "action": action,
                "entityType": entity_type,
                "entityId": entity_id,
                "fields": sorted(fields),
                **(extra or {}),
            },
        )
        register("audit entry", lambda: self.discard(actor.organization_id, entry_id))
        return entry_id

    async def discard(self, org: str, entry_id: str) -> None:
        await self._col.delete_one(org, {"_id": entry_id})

    async def for_entity(self, org: str, entity_id: str) -> list[dict[str, Any]]:
        return await self._col.find(org, {"entityId": entity_id}, sort=[("at", 1), ("_id", 1)])
