"""Chooses the backend from configuration."""

from __future__ import annotations

from app.platform.store.base import Store


def open_store(mongodb_url: str | None, db_name: str, *, timeout_ms: int = 5000) -> Store:
    if mongodb_url:
        from app.platform.store.mongo import MongoStore

        return MongoStore(mongodb_url, db_name, timeout_ms=timeout_ms)
    from app.platform.store.memory import MemoryStore

    return MemoryStore(db_name)
