"""Entity values as the agent sees them: statuses in the GraphQL enums' form.

The store keeps enum values in lower case (``scheduled``, ``pending_payment``); the GraphQL
API shows them as enum values in upper case (``SCHEDULED``, ``PENDING_PAYMENT``). The agent's
tool results and prompt data use the API's form, so a model sees one spelling whichever door
it came through, and its filters may use it too (the stored spelling is still understood).
Which fields are enums is read from the entity types' JSON Schemas, so a new status field
needs no change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.tutoring.entity_types import ENTITY_TYPES

ENUM_FIELDS: dict[str, dict[str, frozenset[str]]] = {
    t.slug: {
        name: frozenset(spec["enum"])
        for name, spec in t.json_schema.get("properties", {}).items()
        if "enum" in spec
    }
    for t in ENTITY_TYPES
}


def public(slug: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each enum field's value in the API's upper case."""
    fields = ENUM_FIELDS.get(slug, {})
    return {k: v.upper() if k in fields and isinstance(v, str) else v for k, v in data.items()}


def stored_filters(slug: str, filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Filters with enum values given in the API's form turned into the stored form:
    ``{"status": "SCHEDULED"}`` and ``{"status": {"in": ["SCHEDULED"]}}`` both work."""
    if filters is None:
        return None
    fields = ENUM_FIELDS.get(slug, {})
    return {k: _stored(v, fields[k]) if k in fields else v for k, v in filters.items()}


def _stored(value: Any, members: frozenset[str]) -> Any:
    if isinstance(value, str):
        return value.lower() if value.lower() in members else value
    if isinstance(value, list):
        return [_stored(v, members) for v in value]
    if isinstance(value, Mapping):
        return {op: _stored(v, members) for op, v in value.items()}
    return value
