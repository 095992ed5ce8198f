"""Permission data as stored per organization.

Everything fails closed: a role sees no entity of a type it has no scope rule for, no field
of a type it has no read mask for, and may set no field of a type it has no write mask for.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WILDCARD = "*"


class Action(StrEnum):
    LIST = "list"
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class Policy(_Model):
    resource: str  # an entity type slug or "*"
    action: str  # an Action or "*"
    effect: Literal["allow", "deny"]

    def matches(self, resource: str, action: str) -> bool:
        return self.resource in (WILDCARD, resource) and self.action in (WILDCARD, action)


Operator = Literal["eq", "ne", "in", "nin", "exists"]


class FieldMatch(_Model):
    """The entity's ``field`` compared with a value from the actor (or a constant)."""

    type: Literal["field_match"] = "field_match"
    field: str  # a data field, or "id"
    operator: Operator = "eq"
    value_path: str | None = Field(default=None, alias="valuePath")
    value: Any = None


class Related(_Model):
    """In scope when ``field`` points at an entity of ``target`` that is in scope."""

    type: Literal["related"] = "related"
    field: str
    target: str


class ReferencedBy(_Model):
    """In scope when an in-scope entity of ``source`` points at it through ``field``
    (a teacher reads the students they have sessions with)."""

    type: Literal["referenced_by"] = "referenced_by"
    source: str
    field: str


class ScopeAll(_Model):
    """Every entity of the type in the organization."""

    type: Literal["all"] = "all"


ScopeRule = Annotated[FieldMatch | Related | ReferencedBy | ScopeAll, Field(discriminator="type")]


class VisibleWhen(_Model):
    """Fields a role sees only on documents that match every condition (a guardian reads a
    session's report once the teacher has shared it). Conditions are field matches, the
    vocabulary of scope rules, tested against the stored document: whether a field shows
    depends on the document's own state, decided here rather than by a resolver."""

    fields: tuple[str, ...]
    conditions: tuple[FieldMatch, ...] = Field(min_length=1)


class ReadMask(_Model):
    """``visible`` is what the role sees on every document; ``visibleWhen`` adds fields on
    the documents matching a condition. A field shown only conditionally is never one a role
    may filter, search, sort on or write through generic writes: on the other documents it
    is hidden, and a filter would reveal it."""

    mode: Literal["whitelist", "blacklist"]
    fields: tuple[str, ...] = ()
    visible_when: tuple[VisibleWhen, ...] = Field(default=(), alias="visibleWhen")

    def visible(self, all_fields: Iterable[str]) -> frozenset[str]:
        """The fields shown on every document (conditional ones excluded)."""
        names = frozenset(all_fields)
        if self.mode == "whitelist":
            return names & frozenset(self.fields)
        return names - frozenset(self.fields)


class WriteMask(_Model):
    """Fields a role may set through generic create/update; ``"*"`` means every field that
    is not server-owned."""

    create: tuple[str, ...] | Literal["*"] = ()
    update: tuple[str, ...] | Literal["*"] = ()

    def writable(self, action: Action, all_fields: Iterable[str]) -> frozenset[str]:
        names = self.create if action is Action.CREATE else self.update
        if names == WILDCARD:
            return frozenset(all_fields)
        return frozenset(names) & frozenset(all_fields)


class RoleDefinition(_Model):
    name: str
    description: str = ""
    policies: tuple[Policy, ...] = ()
    # keyed by type slug or "*"; rules of one role for one type must all hold.
    scopes: dict[str, tuple[ScopeRule, ...]] = Field(default_factory=dict)
    read_masks: dict[str, ReadMask] = Field(default_factory=dict, alias="readMasks")
    write_masks: dict[str, WriteMask] = Field(default_factory=dict, alias="writeMasks")

    def decision(self, resource: str, action: str) -> Literal["allow", "deny"] | None:
        effects = {p.effect for p in self.policies if p.matches(resource, action)}
        if "deny" in effects:
            return "deny"
        return "allow" if "allow" in effects else None

    def scope_rules(self, slug: str) -> tuple[ScopeRule, ...] | None:
        return self.scopes.get(slug, self.scopes.get(WILDCARD))

    def read_mask(self, slug: str) -> ReadMask | None:
        return self.read_masks.get(slug, self.read_masks.get(WILDCARD))

    def write_mask(self, slug: str) -> WriteMask | None:
        return self.write_masks.get(slug, self.write_masks.get(WILDCARD))

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")
