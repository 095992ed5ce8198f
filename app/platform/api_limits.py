"""Per-organization API limits: an organization may lower the service's query cost limit.

The service's own limits (environment) are the ceiling: an organization sharing the service
cannot raise its share of the event loop. The values are read on every request, so they are
cached per process for a few seconds; the process that changes them forgets its copy at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.platform.org_settings import SettingsRepository
from app.platform.store import Store

NAMESPACE = "api"
CACHE_SECONDS = 5.0


class ApiLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maxQueryCost: int | None = Field(
        None, ge=10, le=1_000_000, description="null: the service's limit"
    )


class OrgLimits:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._repo = SettingsRepository(store)
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiLimits]] = {}

    async def get(self, org: str) -> ApiLimits:
        now = self._clock()
        hit = self._cache.get(org)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        limits = await self._repo.get(org, NAMESPACE, ApiLimits)
        self._cache[org] = (now, limits)
        return limits

    async def update(self, org: str, changes: Mapping[str, Any]) -> ApiLimits:
        limits = await self._repo.update(org, NAMESPACE, ApiLimits, changes)
        self._cache.pop(org, None)
        return limits
