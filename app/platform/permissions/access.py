"""One actor's compiled permissions for one request or job.

``load_access`` reads the actor's roles and the organization's entity types once; scopes are
compiled lazily and cached, so a request that touches many entities of a type pays for its
scope (including relational look-ups) once, whatever the page size.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.platform.actor import SYSTEM_ROLE, Actor
from app.platform.errors import BadUserInput, Forbidden
from app.platform.permissions.models import (
    WILDCARD,
    Action,
    FieldMatch,
    Policy,
    ReadMask,
    ReferencedBy,
    Related,
    RoleDefinition,
    ScopeAll,
    WriteMask,
)
from app.platform.permissions.repository import RoleRepository
from app.platform.permissions.scope import Scope, compile_field_match, doc_path, scope_from_ids
from app.platform.registry import SYSTEM_FIELDS, EntityRegistry, EntityType
from app.platform.store import Collection

ENTITIES_COLLECTION = "entities"
_MAX_RELATION_DEPTH = 3

# Jobs run as this role: everything, audited under the job's name. Never stored, so no
# organization can grant it to a user.
SYSTEM_ROLE_DEFINITION = RoleDefinition(
    name=SYSTEM_ROLE,
    policies=(Policy(resource=WILDCARD, action=WILDCARD, effect="allow"),),
    scopes={WILDCARD: (ScopeAll(),)},
    read_masks={WILDCARD: ReadMask(mode="blacklist")},
    write_masks={WILDCARD: WriteMask(create="*", update="*")},
)


class Access:
    def __init__(
        self,
        actor: Actor,
        roles: list[RoleDefinition],
        types: dict[str, EntityType],
        entities: Collection,
    ) -> None:
        self.actor = actor
        self.roles = roles
        self.types = types
        self._entities = entities
        self._scopes: dict[tuple[str, str, int], asyncio.Future[Scope]] = {}

    # -- types and policies -----------------------------------------------------------

    def entity_type(self, slug: str) -> EntityType:
        try:
            return self.types[slug]
        except KeyError:
            raise BadUserInput(
                f"Unknown entity type {slug!r}; known types: {', '.join(sorted(self.types))}.",
                {"type": "unknown entity type"},
            ) from None

    def roles_for(self, slug: str, action: Action) -> list[RoleDefinition]:
        """The actor's roles that allow ``action`` on ``slug``; a deny in any role wins."""
        decisions = [(r, r.decision(slug, action)) for r in self.roles]
        if any(d == "deny" for _, d in decisions):
            return []
        return [r for r, d in decisions if d == "allow"]

    def allows(self, slug: str, action: Action) -> bool:
        return bool(self.roles_for(slug, action))

    def require(self, slug: str, action: Action) -> list[RoleDefinition]:
        self.entity_type(slug)
        return self.require_resource(slug, action)

    def require_resource(self, resource: str, action: Action) -> list[RoleDefinition]:
        """Policies also guard resources that are not entities (settings, packs, jobs)."""
        roles = self.roles_for(resource, action)
        if not roles:
            raise Forbidden(f"Your role may not {action} {resource}.")
        return roles

    # -- scope ------------------------------------------------------------------------

    async def scope(self, slug: str, action: Action) -> Scope:
        """The documents of ``slug`` this actor may ``action``: the union of its roles."""
        roles = self.require(slug, action)
        return Scope.any_of([await self.role_scope(r, slug) for r in roles])

    async def role_scope(self, role: RoleDefinition, slug: str, depth: int = 0) -> Scope:
        """Compiled once per request: concurrent resolvers await the same compilation
        instead of each running the relational look-ups again."""
        key = (role.name, slug, depth)
        if key not in self._scopes:
            self._scopes[key] = asyncio.ensure_future(self._compile(role, slug, depth))
        return await self._scopes[key]

    def _names_real_fields(self, slug: str, rule: object) -> bool:
        """A rule over a field its type lacks (a typo, a dotted path) would make the filter
        and the predicate disagree; such a rule matches nothing instead."""

        def known(type_slug: str, field: str) -> bool:
            t = self.types.get(type_slug)
            return t is not None and (field == "id" or field in t.fields)

        if isinstance(rule, FieldMatch | Related):
            return known(slug, rule.field) and (
                not isinstance(rule, Related) or rule.target in self.types
            )
        if isinstance(rule, ReferencedBy):
            return known(rule.source, rule.field)
        return True

    async def _compile(self, role: RoleDefinition, slug: str, depth: int) -> Scope:
        rules = role.scope_rules(slug)
        if not rules:
            return Scope.nothing()
        parts: list[Scope] = []
        for rule in rules:
            if not self._names_real_fields(slug, rule):
                parts.append(Scope.nothing())
            elif isinstance(rule, ScopeAll):
                parts.append(Scope.everything())
            elif isinstance(rule, FieldMatch):
                parts.append(compile_field_match(rule, self.actor))
            elif depth >= _MAX_RELATION_DEPTH:
                parts.append(Scope.nothing())
            elif isinstance(rule, Related):
                target = await self.role_scope(role, rule.target, depth + 1)
                ids = await self._distinct(rule.target, "_id", target)
                parts.append(scope_from_ids(rule.field, ids))
            elif isinstance(rule, ReferencedBy):
                source = await self.role_scope(role, rule.source, depth + 1)
                ids = await self._distinct(rule.source, doc_path(rule.field), source)
                parts.append(scope_from_ids("id", ids))
        return Scope.all_of(parts)

    async def _distinct(self, slug: str, key: str, scope: Scope) -> list[Any]:
        if scope.empty:
            return []
        query: dict[str, Any] = {"type": slug}
        if scope.filter is not None:
            query = {"$and": [query, scope.filter]}
        return [v for v in await self._entities.distinct(self.actor.organization_id, key, query)]

    async def reaching_roles(
        self, slug: str, action: Action, doc: dict[str, Any]
    ) -> list[RoleDefinition]:
        """The roles that allow ``action`` and whose scope contains ``doc``."""
        out = []
        for role in self.roles_for(slug, action):
            if (await self.role_scope(role, slug)).predicate(doc):
                out.append(role)
        return out

    # -- masks ------------------------------------------------------------------------

    def visible_fields(self, slug: str, roles: list[RoleDefinition]) -> frozenset[str]:
        """Fields shown to an actor reaching a document through ``roles``: a field hidden by
        every reaching role stays hidden even if another role of the actor could see it."""
        fields = self.entity_type(slug).fields
        visible: set[str] = set(SYSTEM_FIELDS) if roles else set()
        for role in roles:
            mask = role.read_mask(slug)
            if mask is not None:
                visible |= mask.visible(fields)
        return frozenset(visible)

    def filterable_fields(self, slug: str) -> frozenset[str]:
        """Fields visible on every document the actor can list; only these may be filtered,
        searched or sorted on, or a filter would reveal a hidden value."""
        fields = self.entity_type(slug).fields
        roles = self.roles_for(slug, Action.LIST)
        if not roles:
            return frozenset()
        common = set(fields)
        for role in roles:
            mask = role.read_mask(slug)
            common &= mask.visible(fields) if mask is not None else set()
        return frozenset(common) | frozenset(SYSTEM_FIELDS)

    def writable_fields(
        self, slug: str, action: Action, roles: list[RoleDefinition]
    ) -> frozenset[str]:
        entity_type = self.entity_type(slug)
        settable = set(entity_type.fields) - set(entity_type.server_owned)
        out: set[str] = set()
        for role in roles:
            mask = role.write_mask(slug)
            read = role.read_mask(slug)
            if mask is None or read is None:
                continue
            # A role never writes a field it cannot read: a no-op write would confirm a guess.
            out |= mask.writable(action, settable) & read.visible(entity_type.fields)
        return frozenset(out)


async def load_access(
    actor: Actor, roles: RoleRepository, registry: EntityRegistry, entities: Collection
) -> Access:
    org = actor.organization_id
    types = await registry.all(org)
    if actor.is_system:
        role_defs = [SYSTEM_ROLE_DEFINITION]
    else:
        # A token can claim any role name; only roles defined for the organization grant.
        role_defs = await roles.for_names(org, actor.roles - {SYSTEM_ROLE})
    return Access(actor, role_defs, types, entities)
