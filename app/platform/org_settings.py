"""Per-organization settings documents, one per namespace, validated by a pydantic model.

Unset values fall back to the model's defaults, so adding a setting never needs a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.platform.errors import BadUserInput
from app.platform.org_versions import OrgVersions
from app.platform.store import IndexSpec, Store

SETTINGS_COLLECTION = "settings"
SETTINGS_INDEXES = (
    IndexSpec(SETTINGS_COLLECTION, (("organizationId", 1), ("namespace", 1)), unique=True),
)

M = TypeVar("M", bound=BaseModel)


class SettingsRepository:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._col = store.collection(SETTINGS_COLLECTION)

    async def get(self, org: str, namespace: str, model: type[M]) -> M:
        doc = await self._col.find_one(org, {"namespace": namespace})
        return model.model_validate((doc or {}).get("values", {}))

    @staticmethod
    def validate(current: M, changes: Mapping[str, Any]) -> M:
        """The merged settings; ``BAD_USER_INPUT`` naming each bad field."""
        try:
            return type(current).model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            fields = {".".join(map(str, e["loc"])) or "(settings)": e["msg"] for e in exc.errors()}
            raise BadUserInput("Invalid settings.", fields) from None

    async def update(
        self, org: str, namespace: str, model: type[M], changes: Mapping[str, Any]
    ) -> M:
        """Validates the merged settings before storing; ``BAD_USER_INPUT`` names each bad
        field and nothing is written."""
        merged = self.validate(await self.get(org, namespace, model), changes)
        await self.write(org, namespace, merged)
        return merged

    async def write(self, org: str, namespace: str, values: BaseModel) -> None:
        """Stores the namespace and bumps the organization's version, so every API process
        reads it afresh (see ``org_state``)."""
        await self._col.update_one(
            org,
            {"namespace": namespace},
            {"$set": {"values": values.model_dump(mode="json")}},
            upsert=True,
        )
        await OrgVersions(self._store).bump(org)
