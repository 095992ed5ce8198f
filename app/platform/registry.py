"""Entity types as data: per-organization definitions, validation and coercion.

A type is a JSON Schema plus the facts the platform needs to enforce integrity generically:
which fields reference which types, which fields only domain operations may set, and which
field links an entity to a signed-in user.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend
from pydantic import BaseModel, ConfigDict, Field

from app.platform.errors import BadUserInput
from app.platform.inputs import utc_datetime
from app.platform.store import Store

TYPES_COLLECTION = "entity_types"
SYSTEM_FIELDS = ("id", "createdAt", "updatedAt")

FORMATS = FormatChecker()


@FORMATS.checks("time-zone", raises=(ZoneInfoNotFoundError, ValueError, OSError))
def _is_time_zone(value: object) -> bool:
    """An IANA time zone name that this machine's zone database knows."""
    if not isinstance(value, str):
        return True
    ZoneInfo(value)
    return True


INCREASING = "x-increasing"


def _increasing(validator: Any, rule: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
    """``x-increasing: {"fields": [[a, b], [c, d]], "message": ...}`` on an object schema:
    the values of each group of fields, compared in order (``a`` before ``b``), come strictly
    before those of the next group -- a window's (startHour, startMinute) before its
    (endHour, endMinute). Absent fields take their schema ``default``; a group with a value
    missing or not a number is left to the other keywords to report. JSON Schema cannot
    compare one field with another, so the types declare the rule and this checks it, for
    every writer (GraphQL, agent tools) alike."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    groups = []
    for group in rule.get("fields", []):
        values = [instance.get(f, properties.get(f, {}).get("default")) for f in group]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return
        groups.append(tuple(values))
    for before, after in pairwise(groups):
        if not before < after:
            yield ValidationError(rule.get("message", "fields are not in increasing order"))


_Validator = extend(Draft202012Validator, {INCREASING: _increasing})


class EntityType(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    slug: str
    name: str
    description: str = ""
    json_schema: dict[str, Any] = Field(alias="schema")
    search_fields: tuple[str, ...] = Field(default=(), alias="searchFields")
    display_config: dict[str, Any] = Field(default_factory=dict, alias="displayConfig")
    # field -> slug of the type it points at; checked on write, blocks deletes of targets.
    references: dict[str, str] = Field(default_factory=dict)
    # fields that only domain operations set (never user input, whatever the write mask).
    server_owned: tuple[str, ...] = Field(default=(), alias="serverOwned")
    # ``actor.<actorLink>`` is the id of the entity of this type whose ``userLinkField``
    # equals the signed-in user's id.
    actor_link: str | None = Field(default=None, alias="actorLink")
    user_link_field: str = Field(default="userId", alias="userLinkField")
    # extra query patterns: each a list of (field, direction), indexed after org and type.
    indexes: tuple[tuple[tuple[str, int], ...], ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.json_schema.get("properties", {}))

    def field_schema(self, name: str) -> dict[str, Any]:
        return self.json_schema.get("properties", {}).get(name, {})

    def is_datetime(self, name: str) -> bool:
        return self.field_schema(name).get("format") == "date-time"

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")

    # -- validation -----------------------------------------------------------------

    def coerce(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Turns ISO strings into aware datetimes for date-time fields, so storage and range
        queries see one representation whatever the transport sent."""
        out = dict(data)
        errors: dict[str, str] = {}
        for name, value in data.items():
            if not self.is_datetime(name) or value is None:
                continue
            if isinstance(value, str):
                try:
                    value = datetime.fromisoformat(value)
                except ValueError:
                    errors[name] = "must be an ISO 8601 date-time with a UTC offset"
                    continue
            if isinstance(value, datetime):
                try:
                    out[name] = utc_datetime(value, name)
                except BadUserInput as exc:
                    errors[name] = exc.fields[name]
            else:
                errors[name] = "must be an ISO 8601 date-time with a UTC offset"
        if errors:
            raise BadUserInput(_summary(self.slug, errors), errors)
        return out

    def validate(self, data: Mapping[str, Any], *, reported: set[str] | None = None) -> None:
        """Raises ``BadUserInput`` naming every failing field.

        With ``reported``, only errors under those top-level fields are described: messages
        quote values, and the caller may not be allowed to see the fields it did not send.
        Other failures become one generic error."""
        validator = _Validator(self.json_schema, format_checker=FORMATS)
        errors: dict[str, str] = {}
        for err in validator.iter_errors(_jsonable(data)):
            if err.validator == "required":
                missing = [f for f in err.validator_value if f not in (err.instance or {})]
                for name in missing:
                    errors.setdefault(".".join([*map(str, err.absolute_path), name]), "is required")
                continue
            if err.validator == "additionalProperties":
                allowed = set(err.schema.get("properties", {}))
                for name in set(err.instance) - allowed:
                    path = ".".join([*map(str, err.absolute_path), name])
                    errors.setdefault(path, "is not a field of this type")
                continue
            path = ".".join(map(str, err.absolute_path)) or "(document)"
            errors.setdefault(path, err.message)
        if errors and reported is not None:
            errors = {k: v for k, v in errors.items() if k.split(".")[0] in reported} or {}
            if not errors:
                raise BadUserInput(
                    f"This {self.slug} holds stored values that no longer pass validation; "
                    "an admin must correct them first."
                )
        if errors:
            raise BadUserInput(_summary(self.slug, errors), errors)


def _summary(slug: str, errors: Mapping[str, str]) -> str:
    parts = "; ".join(f"{k} {v}" for k, v in sorted(errors.items()))
    return f"Invalid {slug}: {parts}."


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class EntityRegistry:
    """Reads and installs an organization's entity types."""

    def __init__(self, store: Store) -> None:
        self._col = store.collection(TYPES_COLLECTION)

    async def all(self, org: str) -> dict[str, EntityType]:
        docs = await self._col.find(org, sort=[("slug", 1)])
        return {d["slug"]: EntityType.model_validate(d) for d in docs}

    async def install(self, org: str, entity_type: EntityType) -> bool:
        """Inserts the type when the organization lacks it; never overwrites a customised
        one. Returns whether it was inserted."""
        doc = entity_type.to_doc()
        matched = await self._col.update_one(
            org, {"slug": entity_type.slug}, {"$setOnInsert": doc}, upsert=True
        )
        return matched == 0
