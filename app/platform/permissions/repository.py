"""Stored role definitions, one document per (organization, role). Every change bumps the
organization's version, so API processes reload their cached copy (``org_state``)."""

from __future__ import annotations

from collections.abc import Iterable

from app.platform.org_versions import OrgVersions
from app.platform.permissions.models import ReadMask, RoleDefinition
from app.platform.store import Store

ROLES_COLLECTION = "roles"


class RoleRepository:
    def __init__(self, store: Store) -> None:
        self._col = store.collection(ROLES_COLLECTION)
        self._versions = OrgVersions(store)

    async def for_names(self, org: str, names: Iterable[str]) -> list[RoleDefinition]:
        docs = await self._col.find(org, {"name": {"$in": sorted(set(names))}})
        return [RoleDefinition.model_validate(_strip(d)) for d in docs]

    async def all(self, org: str) -> list[RoleDefinition]:
        docs = await self._col.find(org, sort=[("name", 1)])
        return [RoleDefinition.model_validate(_strip(d)) for d in docs]

    async def install(self, org: str, role: RoleDefinition) -> bool:
        """Inserts the role when absent; an organization's customisations are kept."""
        matched = await self._col.update_one(
            org, {"name": role.name}, {"$setOnInsert": role.to_doc()}, upsert=True
        )
        return matched == 0

    async def set_read_mask(self, org: str, role: str, slug: str, mask: ReadMask | None) -> None:
        """Sets one type's read mask of a role; None removes it (the role sees no field)."""
        path = f"readMasks.{slug}"
        update = (
            {"$unset": {path: ""}}
            if mask is None
            else {"$set": {path: mask.model_dump(by_alias=True, mode="json")}}
        )
        await self._col.update_one(org, {"name": role}, update)
        await self._versions.bump(org)

    async def replace(self, org: str, role: RoleDefinition) -> None:
        """Stores an organization's own version of a role (its customisation)."""
        doc = role.to_doc()
        await self._col.update_one(org, {"name": role.name}, {"$set": doc}, upsert=True)
        await self._versions.bump(org)


def _strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "organizationId")}
