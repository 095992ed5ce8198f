"""What every request of an organization needs and rarely changes, loaded once per change.

An organization's entity types, role definitions, API limits and its users' entity links
(``actor.teacherId``) are read by every request but change only when an admin installs a
pack, edits a role, changes a limit or links a user to an entity. They are cached per API
process under the organization's *version*: a counter in the store that every such write
bumps after it has written. A request reads that one counter (an indexed lookup) and reuses
the cached state while it is unchanged, so a change made through any API process or the
worker is seen by every process on its very next request, and no organization's state is
ever served to another (the cache is keyed by organization).

Permission decisions that depend only on the roles -- which roles allow an action on a type,
the fields a set of roles sees, filters on, or writes -- are computed once per role set and
kept with the state (``CompiledRoles``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel

from app.platform.api_limits import ApiLimits
from app.platform.org_settings import SettingsRepository
from app.platform.org_versions import VERSION_INDEXES, OrgVersions
from app.platform.permissions.models import Action, FieldMatch, RoleDefinition
from app.platform.registry import SYSTEM_FIELDS, EntityRegistry, EntityType
from app.platform.store import Store

M = TypeVar("M", bound=BaseModel)

MAX_CACHED_LINKS = 10_000  # users per organization whose links stay cached
# Fields a role set shows only on documents matching every one of the conditions.
Conditional = tuple[frozenset[str], tuple[FieldMatch, ...]]


class CompiledRoles:
    """Decisions of one set of role definitions, computed on first use and then reused."""

    def __init__(self, roles: Iterable[RoleDefinition], types: Mapping[str, EntityType]) -> None:
        self.roles = tuple(roles)
        self._types = types
        self._allowed: dict[tuple[str, str], tuple[RoleDefinition, ...]] = {}
        self._visible: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}
        self._conditional: dict[tuple[str, tuple[str, ...]], tuple[Conditional, ...]] = {}
        self._seeing: dict[tuple[str, str], tuple[RoleDefinition, ...]] = {}
        self._filterable: dict[str, frozenset[str]] = {}
        self._writable: dict[tuple[str, str, tuple[str, ...]], frozenset[str]] = {}

    def roles_for(self, resource: str, action: str) -> tuple[RoleDefinition, ...]:
        """The roles that allow ``action`` on ``resource``; a deny in any role wins."""
        key = (resource, action)
        found = self._allowed.get(key)
        if found is None:
            decisions = [(r, r.decision(resource, action)) for r in self.roles]
            if any(d == "deny" for _, d in decisions):
                found = ()
            else:
                found = tuple(r for r, d in decisions if d == "allow")
            self._allowed[key] = found
        return found

    def visible_fields(self, slug: str, roles: Iterable[RoleDefinition]) -> frozenset[str]:
        """Fields shown through ``roles`` (the roles that reach a document): a field hidden
        by every reaching role stays hidden even if another role of the actor could see it."""
        names = tuple(r.name for r in roles)
        key = (slug, names)
        found = self._visible.get(key)
        if found is None:
            fields = self._types[slug].fields
            visible: set[str] = set(SYSTEM_FIELDS) if names else set()
            for role in self._by_name(names):
                mask = role.read_mask(slug)
                if mask is not None:
                    visible |= mask.visible(fields)
            found = self._visible[key] = frozenset(visible)
        return found

    def conditional_fields(
        self, slug: str, roles: Iterable[RoleDefinition]
    ) -> tuple[Conditional, ...]:
        """What ``roles`` show beyond ``visible_fields`` on documents matching a condition:
        (fields, conditions) pairs, empty for masks without conditions (the usual case,
        which then costs a document nothing beyond its fixed mask)."""
        names = tuple(r.name for r in roles)
        key = (slug, names)
        found = self._conditional.get(key)
        if found is None:
            fields = self._types[slug].fields
            always = self.visible_fields(slug, self._by_name(names))
            entries = []
            for role in self._by_name(names):
                mask = role.read_mask(slug)
                for entry in mask.visible_when if mask is not None else ():
                    extra = (frozenset(entry.fields) & frozenset(fields)) - always
                    if extra:
                        entries.append((extra, entry.conditions))
            found = self._conditional[key] = tuple(entries)
        return found

    def roles_seeing(self, slug: str, field: str) -> tuple[RoleDefinition, ...]:
        """The roles that may list ``slug`` and see ``field`` on every document: following a
        relation by that link field reaches children only through these roles, so the link
        it filters on is one the role shows anyway."""
        key = (slug, field)
        found = self._seeing.get(key)
        if found is None:
            fields = self._types[slug].fields
            found = tuple(
                r
                for r in self.roles_for(slug, Action.LIST)
                if (mask := r.read_mask(slug)) is not None and field in mask.visible(fields)
            )
            self._seeing[key] = found
        return found

    def filterable_fields(self, slug: str) -> frozenset[str]:
        """Fields visible on every document the actor can list; only these may be filtered,
        searched or sorted on, or a filter would reveal a hidden value. A field a role shows
        only on some documents (``visibleWhen``) is therefore not among them."""
        found = self._filterable.get(slug)
        if found is None:
            fields = self._types[slug].fields
            roles = self.roles_for(slug, Action.LIST)
            common: set[str] = set(fields) if roles else set()
            for role in roles:
                mask = role.read_mask(slug)
                common &= mask.visible(fields) if mask is not None else set()
            found = frozenset(common) | (frozenset(SYSTEM_FIELDS) if roles else frozenset())
            self._filterable[slug] = found
        return found

    def writable_fields(
        self, slug: str, action: Action, roles: Iterable[RoleDefinition]
    ) -> frozenset[str]:
        names = tuple(r.name for r in roles)
        key = (slug, str(action), names)
        found = self._writable.get(key)
        if found is None:
            entity_type = self._types[slug]
            settable = set(entity_type.fields) - set(entity_type.server_owned)
            out: set[str] = set()
            for role in self._by_name(names):
                mask, read = role.write_mask(slug), role.read_mask(slug)
                if mask is None or read is None:
                    continue
                # A role never writes a field it cannot read: a no-op write would confirm a
                # guess about the hidden value. Fields shown only on some documents count as
                # unreadable here; domain operations set those.
                out |= mask.writable(action, settable) & read.visible(entity_type.fields)
            found = self._writable[key] = frozenset(out)
        return found

    def _by_name(self, names: tuple[str, ...]) -> list[RoleDefinition]:
        return [r for r in self.roles if r.name in names]


@dataclass
class OrgState:
    organization: str
    version: int
    types: dict[str, EntityType]
    roles: dict[str, RoleDefinition]
    limits: ApiLimits
    links: OrderedDict[str, Mapping[str, str]] = field(default_factory=OrderedDict)
    _compiled: dict[frozenset[str], CompiledRoles] = field(default_factory=dict)
    _settings: dict[str, BaseModel] = field(default_factory=dict)
    _repo: SettingsRepository | None = None

    async def settings(self, namespace: str, model: type[M]) -> M:
        """A settings namespace of the organization (a pack's), read once per version:
        ``SettingsRepository`` bumps the version when it writes."""
        found = self._settings.get(namespace)
        if not isinstance(found, model):
            assert self._repo is not None
            found = self._settings[namespace] = await self._repo.get(
                self.organization, namespace, model
            )
        return found

    def compiled(self, roles: Iterable[RoleDefinition]) -> CompiledRoles:
        roles = list(roles)
        key = frozenset(r.name for r in roles)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = CompiledRoles(roles, self.types)
        return found

    def cached_links(self, user_id: str) -> Mapping[str, str] | None:
        found = self.links.get(user_id)
        if found is not None:
            self.links.move_to_end(user_id)
        return found

    def remember_links(self, user_id: str, links: Mapping[str, str]) -> None:
        self.links[user_id] = links
        if len(self.links) > MAX_CACHED_LINKS:
            self.links.popitem(last=False)


class OrgStates:
    """The per-process cache of ``OrgState``, checked against the store's version."""

    def __init__(self, store: Store) -> None:
        self.versions = OrgVersions(store)
        self._registry = EntityRegistry(store)
        self._roles = store.collection("roles")
        self._settings = SettingsRepository(store)
        self._states: dict[str, OrgState] = {}

    async def get(self, org: str) -> OrgState:
        version = await self.versions.current(org)
        state = self._states.get(org)
        if state is not None and state.version == version:
            return state
        # Read after the version: whatever is loaded is at least as new as that version.
        types = await self._registry.all(org)
        docs = await self._roles.find(org, sort=[("name", 1)])
        roles = {
            d["name"]: RoleDefinition.model_validate(
                {k: v for k, v in d.items() if k not in ("_id", "organizationId")}
            )
            for d in docs
        }
        limits = await self._settings.get(org, "api", ApiLimits)
        state = OrgState(org, version, types, roles, limits, _repo=self._settings)
        self._states[org] = state
        return state

    async def changed(self, org: str) -> None:
        """Marks the organization's state changed, for every process."""
        await self.versions.bump(org)
        self._states.pop(org, None)


__all__ = ["VERSION_INDEXES", "CompiledRoles", "OrgState", "OrgStates", "OrgVersions"]
