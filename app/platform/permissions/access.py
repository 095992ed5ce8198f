"""One actor's compiled permissions for one request or job.

An ``Access`` is built from the organization's cached state (``app.platform.org_state``):
its roles and types, and the decisions of its role set, computed once per role set. Scopes
depend on the actor (its links) and on data (relational rules), so they are compiled per
request, lazily, once per type: a request that touches many entities of a type pays for its
scope (including relational look-ups) once, whatever the page size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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
from app.platform.permissions.scope import Scope, compile_field_match, doc_path, scope_from_ids
from app.platform.registry import EntityType
from app.platform.store import Collection, and_filters

if TYPE_CHECKING:
    from app.platform.org_state import OrgState

ENTITIES_COLLECTION = "entities"
Mask = Callable[[Mapping[str, Any]], frozenset[str]]  # a stored document -> the fields it shows
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
    def __init__(self, actor: Actor, state: OrgState, entities: Collection) -> None:
        self.actor = actor
        self.state = state
        self.types = state.types
        if actor.is_system:
            roles = [SYSTEM_ROLE_DEFINITION]
        else:
            # A token can claim any role name; only roles defined for the organization grant.
            claimed = sorted(actor.roles - {SYSTEM_ROLE})
            roles = [state.roles[n] for n in claimed if n in state.roles]
        self.roles = roles
        self.compiled = state.compiled(roles)
        self._entities = entities
        self._scopes: dict[tuple[str, str, int], asyncio.Future[Scope]] = {}
        self._masks: dict[tuple[str, tuple[str, ...]], Mask] = {}

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
        return list(self.compiled.roles_for(slug, action))

    def allows(self, slug: str, action: Action) -> bool:
        return bool(self.compiled.roles_for(slug, action))

    def require(self, slug: str, action: Action) -> list[RoleDefinition]:
        self.entity_type(slug)
        return self.require_resource(slug, action)

    def require_resource(self, resource: str, action: Action) -> list[RoleDefinition]:
        """Policies also guard resources that are not entities (settings, packs, jobs)."""
        roles = self.compiled.roles_for(resource, action)
        if not roles:
            raise Forbidden(f"Your role may not {action} {resource}.")
        return list(roles)

    # -- scope ------------------------------------------------------------------------

    async def scope(self, slug: str, action: Action) -> Scope:
        """The documents of ``slug`` this actor may ``action``: the union of its roles."""
        roles = self.require(slug, action)
        return Scope.any_of([await self.role_scope(r, slug) for r in roles])

    async def role_scope(self, role: RoleDefinition, slug: str, depth: int = 0) -> Scope:
        """Compiled once per request: concurrent resolvers await the same compilation
        instead of each running the relational look-ups again."""
        key = (role.name, slug, depth)
        pending = self._scopes.get(key)
        if pending is not None:
            return await pending  # done already, or being compiled by another resolver
        # The first caller compiles in its own task (no task of its own to schedule); others
        # wait on the future it fills.
        pending = self._scopes[key] = asyncio.get_running_loop().create_future()
        try:
            scope = await self._compile(role, slug, depth)
        except BaseException as exc:
            del self._scopes[key]  # let a later caller try again
            if not pending.cancelled():
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning if none waits
            raise
        pending.set_result(scope)
        return scope

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
        query = and_filters({"type": slug}, scope.filter)
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

    async def allows_on(
        self, resource: str, action: Action, slug: str, doc: Mapping[str, Any]
    ) -> bool:
        """Whether a role of the actor that reaches ``doc`` (a document of ``slug``, for
        update) allows ``action`` on ``resource``: a permission held per document rather than
        per organization. A role's policy counts only on the documents its own scope reaches,
        so a user holding two roles acts on each document in the role that reaches it."""
        allowed = {r.name for r in self.compiled.roles_for(resource, action)}
        if not allowed:
            return False
        reaching = await self.reaching_roles(slug, Action.UPDATE, dict(doc))
        return any(r.name in allowed for r in reaching)

    # -- masks (decided once per role set, see ``CompiledRoles``) ------------------------

    def visible_fields(self, slug: str, roles: list[RoleDefinition]) -> frozenset[str]:
        self.entity_type(slug)
        return self.compiled.visible_fields(slug, roles)

    def visible_on(
        self, slug: str, roles: list[RoleDefinition], doc: Mapping[str, Any]
    ) -> frozenset[str]:
        """The fields of ``doc`` shown through ``roles`` (those reaching it): the roles' fixed
        masks, plus the fields of conditional entries whose conditions ``doc`` matches."""
        return self.mask(slug, roles)(doc)

    def mask(self, slug: str, roles: list[RoleDefinition]) -> Mask:
        """``visible_on`` for many documents: a function of the stored document, built once
        per request and role set. Without conditions it returns one fixed set."""
        key = (slug, tuple(r.name for r in roles))
        found = self._masks.get(key)
        if found is None:
            found = self._masks[key] = self._compile_mask(slug, roles)
        return found

    def _compile_mask(self, slug: str, roles: list[RoleDefinition]) -> Mask:
        always = self.visible_fields(slug, roles)
        entries = self.compiled.conditional_fields(slug, roles)
        if not entries:
            return lambda _doc: always
        # Conditions compile like scope rules (an actor value such as actor.teacherId
        # included), and like them fail closed: a condition over an unknown field never holds.
        tests = [
            (
                fields,
                Scope.all_of(
                    [
                        compile_field_match(c, self.actor)
                        if self._names_real_fields(slug, c)
                        else Scope.nothing()
                        for c in conditions
                    ]
                ).predicate,
            )
            for fields, conditions in entries
        ]
        if len(tests) == 1:  # the usual case: one entry, two possible sets, no tuple per row
            ((fields, holds),) = tests
            widened = always | fields
            return lambda doc: widened if holds(doc) else always
        combinations: dict[tuple[bool, ...], frozenset[str]] = {}

        def visible(doc: Mapping[str, Any]) -> frozenset[str]:
            hits = tuple(holds(doc) for _, holds in tests)
            found = combinations.get(hits)
            if found is None:
                shown = [fields for (fields, _), hit in zip(tests, hits, strict=True) if hit]
                found = combinations[hits] = always.union(*shown)
            return found

        return visible

    async def link_scope(self, slug: str, field: str) -> Scope:
        """The documents of ``slug`` the actor may list by following a relation through
        ``field`` from a parent they have read. Only the listing roles that show ``field``
        take part: the relation then never tells a role a link its mask hides, and the filter
        on the link is the system's, not judged like a caller's filter (a teacher who is also
        a guardian lists their children although teachers cannot see ``guardianId``)."""
        self.require(slug, Action.LIST)
        roles = self.compiled.roles_seeing(slug, field)
        return Scope.any_of([await self.role_scope(r, slug) for r in roles])

    def filterable_fields(self, slug: str) -> frozenset[str]:
        self.entity_type(slug)
        return self.compiled.filterable_fields(slug)

    def writable_fields(
        self, slug: str, action: Action, roles: list[RoleDefinition]
    ) -> frozenset[str]:
        self.entity_type(slug)
        return self.compiled.writable_fields(slug, action, roles)


def load_access(actor: Actor, state: OrgState, entities: Collection) -> Access:
    return Access(actor, state, entities)
