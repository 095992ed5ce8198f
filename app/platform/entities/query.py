"""Translates a caller's filter, search and order into a MongoDB query, safely.

Callers never pass MongoDB syntax: field names are checked against the type, operators come
from a closed list, values may not be documents (no operator injection), and every field used
must be visible to the actor on every document it can list (no filter oracles).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from app.platform.entities.models import Entity, OrderKey
from app.platform.errors import BadUserInput, Forbidden
from app.platform.inputs import utc_datetime
from app.platform.registry import EntityType

OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists", "contains")
_TOP_LEVEL = {"id": "_id", "createdAt": "createdAt", "updatedAt": "updatedAt"}
_DATETIME_FIELDS = {"createdAt", "updatedAt"}
NOTHING = {"_id": {"$in": []}}


def field_path(name: str) -> str:
    return _TOP_LEVEL.get(name) or f"data.{name}"


def _check_field(entity_type: EntityType, name: str, allowed: frozenset[str], verb: str) -> None:
    if name not in _TOP_LEVEL and name not in entity_type.fields:
        raise BadUserInput(
            f"{entity_type.slug} has no field {name!r}.", {name: "is not a field of this type"}
        )
    if name not in allowed:
        raise Forbidden(
            f"You may not {verb} by {name!r}: the field is hidden from your role.",
            details={"fields": {name: "is hidden from your role"}},
        )


def _scalar(entity_type: EntityType, name: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        raise BadUserInput(f"Filter value for {name!r} must be a scalar.", {name: "not a scalar"})
    if name in _DATETIME_FIELDS or entity_type.is_datetime(name):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise BadUserInput(
                    f"Filter value for {name!r} must be an ISO 8601 date-time.",
                    {name: "not a date-time"},
                ) from None
        if isinstance(value, datetime):
            value = utc_datetime(value, name)
    return value


def _condition(entity_type: EntityType, name: str, op: str, value: Any) -> dict[str, Any]:
    path = field_path(name)
    if op not in OPERATORS:
        raise BadUserInput(
            f"Unknown operator {op!r} on {name!r}; use one of {', '.join(OPERATORS)}.",
            {name: f"unknown operator {op}"},
        )
    if op == "exists":
        return {path: {"$exists": bool(value)}}
    if op in ("in", "nin"):
        if not isinstance(value, list | tuple):
            raise BadUserInput(f"{op!r} on {name!r} needs a list.", {name: "not a list"})
        return {path: {f"${op}": [_scalar(entity_type, name, v) for v in value]}}
    scalar = _scalar(entity_type, name, value)
    if scalar is None and op in ("eq", "ne"):
        # Explicit null compares as "absent" the way MongoDB does, which is the intent.
        return {path: None} if op == "eq" else {path: {"$ne": None}}
    if op == "eq":
        return {path: scalar}
    if op == "contains":
        if entity_type.field_schema(name).get("type") == "array":
            return {path: scalar}
        return {path: {"$regex": re.escape(str(scalar)), "$options": "i"}}
    return {path: {f"${op}": scalar}}


def build_filter(
    entity_type: EntityType,
    where: Mapping[str, Any] | None,
    search: str | None,
    allowed: frozenset[str],
) -> list[dict[str, Any]]:
    """Returns the list of conditions (to be AND-ed) for ``where`` and ``search``."""
    out: list[dict[str, Any]] = []
    for name, cond in (where or {}).items():
        _check_field(entity_type, name, allowed, "filter")
        if isinstance(cond, Mapping):
            for op, value in cond.items():
                out.append(_condition(entity_type, name, op, value))
        else:
            out.append(_condition(entity_type, name, "eq", cond))
    if search:
        fields = [f for f in entity_type.search_fields if f in allowed]
        if not fields:
            out.append(NOTHING)
        else:
            pattern = {"$regex": re.escape(search), "$options": "i"}
            out.append({"$or": [{field_path(f): pattern} for f in fields]})
    return out


def sort_spec(
    entity_type: EntityType, order_by: Sequence[OrderKey], allowed: frozenset[str]
) -> list[tuple[str, int]]:
    keys = list(order_by) or [OrderKey("createdAt")]
    spec: list[tuple[str, int]] = []
    for key in keys:
        if key.field == "id":
            continue
        _check_field(entity_type, key.field, allowed, "order")
        if entity_type.field_schema(key.field).get("type") in ("array", "object"):
            raise BadUserInput(
                f"Cannot order by {key.field!r}: it is not a single value.",
                {key.field: "not orderable"},
            )
        spec.append((field_path(key.field), -1 if key.descending else 1))
    spec.append(("_id", 1))
    return spec


# -- cursors: keyset pagination, so inserts before the cursor never shift a page ---------


def _encode_value(value: Any) -> Any:
    return {"$dt": value.isoformat()} if isinstance(value, datetime) else value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$dt"}:
        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, dict | list):
        raise ValueError("bad cursor value")
    return value


def _doc_value(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def encode_cursor(doc: Mapping[str, Any], *, spec: Sequence[tuple[str, int]]) -> str:
    payload = {
        "s": [[p, d] for p, d in spec],
        "v": [_encode_value(_doc_value(doc, p)) for p, _ in spec],
    }
    raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def entity_cursor(entity: Entity, *, spec: Sequence[tuple[str, int]]) -> str:
    """The cursor of an entity in a page ordered by ``spec``: its values are those of the
    stored document, as every field ``spec`` names is visible to the actor (``sort_spec``)."""
    doc = {"_id": entity.id, "data": entity.data, "createdAt": entity.created_at,
           "updatedAt": entity.updated_at}  # fmt: skip
    return encode_cursor(doc, spec=spec)


def reverse_spec(spec: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The exact reverse order, nulls included (MongoDB puts them first ascending and last
    descending), so reading it forward walks ``spec`` backward."""
    return [(path, -direction) for path, direction in spec]


def cursor_condition(
    cursor: str, spec: Sequence[tuple[str, int]], *, before: bool = False
) -> dict[str, Any]:
    """The documents strictly after ``cursor`` in ``spec`` order (nulls sort first), or
    strictly before it. Cursors are the same whichever way a client pages."""
    name = "before" if before else "after"
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        values = [_decode_value(v) for v in payload["v"]]
        same_order = [tuple(x) for x in payload["s"]] == [tuple(x) for x in spec]
    except (ValueError, KeyError, TypeError):
        raise BadUserInput("The cursor is not valid.", {name: "invalid cursor"}) from None
    if not same_order or len(values) != len(spec):
        raise BadUserInput(
            f"The cursor belongs to a different ordering; start again without '{name}'.",
            {name: "cursor does not match this order"},
        )
    if before:
        spec = reverse_spec(spec)
    branches: list[dict[str, Any]] = []
    for i, (path, direction) in enumerate(spec):
        equal = [{p: values[j]} for j, (p, _) in enumerate(spec[:i])]
        after = _after(path, direction, values[i])
        if after is None:
            continue
        branches.append({"$and": [*equal, after]} if equal else after)
    return {"$or": branches} if branches else NOTHING


def _after(path: str, direction: int, value: Any) -> dict[str, Any] | None:
    if direction == 1:
        return {path: {"$ne": None}} if value is None else {path: {"$gt": value}}
    if value is None:
        return None  # nulls come last when descending: nothing sorts after them
    return {"$or": [{path: {"$lt": value}}, {path: None}]}
