from __future__ import annotations

import pytest

from app.platform.entities import EntityService
from app.platform.packs import ensure_indexes
from app.platform.store.memory import MemoryStore
from app.tutoring.pack import TUTORING_PACK
from tests.world import NOW, World, build_world


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await ensure_indexes(s, [TUTORING_PACK])
    return s


@pytest.fixture
def clock():
    return lambda: NOW


@pytest.fixture
async def service(store, clock) -> EntityService:
    return EntityService(store, clock=clock)


@pytest.fixture
async def world(service) -> World:
    return await build_world(service, "org-a")


@pytest.fixture
async def other_world(service, world) -> World:
    """The same layout in a second organization sharing the store."""
    return await build_world(service, "org-b")
