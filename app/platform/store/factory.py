"""Chooses the backend from configuration."""

from __future__ import annotations

from app.platform.store.base import Store


def open_store(mongodb_url: str | None, db_name: str) -> Store:
    if mongodb_url:
        from app.platform.store.mongo import MongoStore

        return MongoStore(mongodb_url, db_name)
    from app.platform.store.memory import MemoryStore

    return MemoryStore(db_name)
