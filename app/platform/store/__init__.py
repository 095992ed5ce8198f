"""The narrow store interface every other module uses, and its two backends."""

from app.platform.store.base import (
    ORG_FIELD,
    Collection,
    DuplicateKey,
    IndexSpec,
    Store,
    and_filters,
)
from app.platform.store.factory import open_store

__all__ = [
    "ORG_FIELD",
    "Collection",
    "DuplicateKey",
    "IndexSpec",
    "Store",
    "and_filters",
    "open_store",
]
