"""Per-organization API limits: an organization may lower the service's query cost limit.

The service's own limits (environment) are the ceiling: an organization sharing the service
cannot raise its share of the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.platform.org_settings import SettingsRepository
from app.platform.store import Store

NAMESPACE = "api"


class ApiLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maxQueryCost: int | None = Field(
        None, ge=10, le=1_000_000, description="null: the service's limit"
    )


class OrgLimits:
    """Reads and changes an organization's limits. Requests read them from the
    organization's cached state (``app.platform.org_state``); a change bumps its version."""

    def __init__(self, store: Store) -> None:
        self._repo = SettingsRepository(store)

    async def get(self, org: str) -> ApiLimits:
        return await self._repo.get(org, NAMESPACE, ApiLimits)

    async def update(self, org: str, changes: Mapping[str, Any]) -> ApiLimits:
        return await self._repo.update(org, NAMESPACE, ApiLimits, changes)  # bumps the version
