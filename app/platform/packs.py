"""Packs: a bundle of entity types and roles installed into an organization.

Installing is idempotent and conservative: what an organization already has (including its
own changes to a role's masks) is kept; only what is missing is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.platform.audit import AUDIT_INDEXES
from app.platform.calendar import CALENDAR_INDEXES
from app.platform.entities.query import field_path
from app.platform.entities.service import ENTITY_INDEXES, ActorEntities
from app.platform.errors import Forbidden
from app.platform.jobs import JOB_INDEXES
from app.platform.org_settings import SETTINGS_INDEXES
from app.platform.org_versions import VERSION_INDEXES, OrgVersions
from app.platform.outbox import MESSAGE_INDEXES
from app.platform.permissions import Action, RoleDefinition, RoleRepository
from app.platform.permissions.access import ENTITIES_COLLECTION
from app.platform.permissions.repository import ROLES_COLLECTION
from app.platform.registry import TYPES_COLLECTION, EntityRegistry, EntityType
from app.platform.store import IndexSpec, Store

PACKS_COLLECTION = "packs"
PACK_RESOURCE = "pack"
# The platform's bootstrap policy: this token role may install the first pack of an org.
BOOTSTRAP_ROLE = "admin"

PLATFORM_INDEXES: tuple[IndexSpec, ...] = (
    *ENTITY_INDEXES,
    *AUDIT_INDEXES,
    *CALENDAR_INDEXES,
    *JOB_INDEXES,
    *MESSAGE_INDEXES,
    *SETTINGS_INDEXES,
    *VERSION_INDEXES,
    IndexSpec(TYPES_COLLECTION, (("organizationId", 1), ("slug", 1)), unique=True),
    IndexSpec(ROLES_COLLECTION, (("organizationId", 1), ("name", 1)), unique=True),
    IndexSpec(PACKS_COLLECTION, (("organizationId", 1), ("slug", 1)), unique=True),
)


@dataclass(frozen=True)
class Pack:
    slug: str
    version: str
    entity_types: tuple[EntityType, ...]
    roles: tuple[RoleDefinition, ...]
    extra_indexes: tuple[IndexSpec, ...] = field(default=())

    def indexes(self) -> list[IndexSpec]:
        """Indexes for every query pattern the platform runs on this pack's types: reference
        look-ups (scopes, relations, delete checks) in the default page order, user links
        (unique), and the patterns each type declares (its filters and orders)."""
        specs: list[IndexSpec] = []
        base = (("organizationId", 1), ("type", 1))
        by_time = (("createdAt", 1), ("_id", 1))  # the default page order, for keyset cursors
        link_fields: set[str] = set()
        for t in self.entity_types:
            for ref in t.references:
                specs.append(IndexSpec(ENTITIES_COLLECTION, (*base, (f"data.{ref}", 1), *by_time)))
            for pattern in t.indexes:
                keys = tuple((field_path(f), d) for f, d in pattern)
                tail = tuple(k for k in by_time if k[0] not in {f for f, _ in keys})
                specs.append(IndexSpec(ENTITIES_COLLECTION, (*base, *keys, *tail)))
            if t.actor_link:
                link_fields.add(t.user_link_field)
        for name in sorted(link_fields):
            path = f"data.{name}"
            specs.append(
                IndexSpec(
                    ENTITIES_COLLECTION,
                    (*base, (path, 1)),
                    unique=True,
                    partial={path: {"$exists": True}},
                    name=f"user_link_{name}",
                )
            )
        return _dedupe([*specs, *self.extra_indexes])


def _dedupe(specs: Sequence[IndexSpec]) -> list[IndexSpec]:
    seen: dict[str, IndexSpec] = {}
    for spec in specs:
        seen.setdefault(f"{spec.collection}:{spec.index_name}", spec)
    return list(seen.values())


def all_indexes(packs: Sequence[Pack]) -> list[IndexSpec]:
    """The platform's own indexes and every known pack's."""
    specs = [*PLATFORM_INDEXES]
    for pack in packs:
        specs.extend(pack.indexes())
    return _dedupe(specs)


async def ensure_indexes(store: Store, packs: Sequence[Pack]) -> None:
    """Run at start-up."""
    await store.ensure_indexes(all_indexes(packs))


async def install_pack(store: Store, org: str, pack: Pack) -> list[EntityType]:
    """Adds the pack's missing types and roles to ``org``; returns the pack's types as the
    organization now has them."""
    await store.ensure_indexes(pack.indexes())
    registry = EntityRegistry(store)
    roles = RoleRepository(store)
    for entity_type in pack.entity_types:
        await registry.install(org, entity_type)
    for role in pack.roles:
        await roles.install(org, role)
    await store.collection(PACKS_COLLECTION).update_one(
        org,
        {"slug": pack.slug},
        {"$setOnInsert": {"slug": pack.slug, "version": pack.version}},
        upsert=True,
    )
    await OrgVersions(store).bump(org)  # every API process reloads the org's types and roles
    installed = await registry.all(org)
    return [installed[t.slug] for t in pack.entity_types]


async def installed_packs(store: Store, org: str) -> list[str]:
    return [d["slug"] for d in await store.collection(PACKS_COLLECTION).find(org)]


async def install_pack_as(entities: ActorEntities, pack: Pack) -> list[EntityType]:
    """``install_pack`` for a caller: needs ``create`` on the ``pack`` resource, which the
    organization's installed roles grant (admins) -- or, for an organization that has no
    pack yet and so no roles at all, the platform's own bootstrap policy: a verified token
    whose roles include ``admin`` for that organization. Without it a new organization could
    never be onboarded, since the admin role is itself installed by a pack."""
    org = entities.actor.organization_id
    store = entities.service.store
    if not entities.access.allows(PACK_RESOURCE, Action.CREATE):
        bootstrap = BOOTSTRAP_ROLE in entities.actor.roles and not await installed_packs(store, org)
        if not bootstrap:
            raise Forbidden(f"Your role may not {Action.CREATE} {PACK_RESOURCE}.")
    types = await install_pack(store, org, pack)
    await entities.service.audit.record(
        entities.actor, "pack.install", at=entities.service.clock(), extra={"pack": pack.slug}
    )
    return types
