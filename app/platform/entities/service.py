"""The secure entity service.

Every entity read or write in the product goes through ``ActorEntities``: it checks the
policy, confines the store query to the actor's scope, masks what leaves, enforces write
masks and the type's schema and references, stamps and versions documents, and audits writes.
Transports and domain code call it; none of them touch the ``entities`` collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from bson import ObjectId

from app.platform.actor import Actor
from app.platform.api_limits import OrgLimits
from app.platform.audit import AuditLog
from app.platform.changes import CREATED, DELETED, UPDATED, Changes
from app.platform.clock import Clock, system_clock
from app.platform.entities.models import Entity, Link, OrderKey, Page
from app.platform.entities.query import (
    build_filter,
    cursor_condition,
    entity_cursor,
    reverse_spec,
    sort_spec,
)
from app.platform.errors import BadUserInput, Conflict, Forbidden, NotFound
from app.platform.jobs import JobService
from app.platform.org_state import OrgState, OrgStates
from app.platform.permissions import Access, Action, RoleDefinition, RoleRepository
from app.platform.permissions.access import ENTITIES_COLLECTION
from app.platform.permissions.scope import Scope
from app.platform.registry import EntityRegistry, EntityType
from app.platform.store import DuplicateKey, IndexSpec, Store, and_filters
from app.platform.undo import register, undo_on_failure

MAX_PAGE_SIZE = 100
VERSION = "_v"
_new_entity = tuple.__new__  # Entity's fields in order, without its keyword constructor

ENTITY_INDEXES = (
    IndexSpec(
        ENTITIES_COLLECTION, (("organizationId", 1), ("type", 1), ("createdAt", 1), ("_id", 1))
    ),
    IndexSpec(
        ENTITIES_COLLECTION, (("organizationId", 1), ("type", 1), ("updatedAt", 1), ("_id", 1))
    ),
)


def _now(clock: Clock) -> datetime:
    # BSON dates carry milliseconds; truncate so both backends return what was written.
    now = clock()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _masked_in_place(slug: str, doc: Mapping[str, Any], visible: frozenset[str]) -> Entity:
    """The entity of ``doc``, whose ``data`` becomes the entity's, less what the mask hides.
    Runs for every row of every page: nothing is copied, a mask usually hides nothing the
    document holds, and the tuple is built directly (a NamedTuple's keyword constructor is a
    Python-level call)."""
    data = doc.get("data")
    if data is None:
        data = {}
    elif not visible.issuperset(data):
        for name in data.keys() - visible:
            del data[name]
    return _new_entity(
        Entity, (doc["_id"], slug, data, doc["createdAt"], doc["updatedAt"], visible)
    )


def _and(*parts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The conjunction of filters, as one flat document when their fields do not overlap
    (the shape a query planner, ours or MongoDB's, matches indexes against best)."""
    return and_filters(*parts)


class EntityService:
    """Shared dependencies; ``for_actor`` gives the per-request, permission-bound view."""

    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock
        self.registry = EntityRegistry(store)
        self.roles = RoleRepository(store)
        self.audit = AuditLog(store)
        self.collection = store.collection(ENTITIES_COLLECTION)
        # Committed writes are announced here (to live subscribers, once Redis is attached).
        self.changes = Changes()
        self.jobs = JobService(store, clock=clock, changes=self.changes)
        self.limits = OrgLimits(store)
        self.states = OrgStates(store)

    async def for_actor(self, actor: Actor, state: OrgState | None = None) -> ActorEntities:
        """The actor's permission-bound view. ``state`` is the organization's cached state
        when the caller already holds it (one request, one version read)."""
        if state is None or state.organization != actor.organization_id:
            state = await self.states.get(actor.organization_id)
        return ActorEntities(self, Access(actor, state, self.collection))


class ActorEntities:
    def __init__(self, service: EntityService, access: Access) -> None:
        self.service = service
        self._col = service.collection
        self.access = access

    @property
    def actor(self) -> Actor:
        return self.access.actor

    @property
    def _org(self) -> str:
        return self.actor.organization_id

    # -- reads ------------------------------------------------------------------------

    async def query(
        self,
        slug: str,
        *,
        where: Mapping[str, Any] | None = None,
        search: str | None = None,
        order_by: Sequence[OrderKey] = (),
        first: int = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        link: Link | None = None,
    ) -> Page:
        """A page of the entities the actor may list, in ``order_by`` order: the ``first``
        after ``after``, or, with ``last``, the last ones before ``before`` (Relay's backward
        paging; ``first`` then does not apply); both cursors may bound one page. ``where``,
        ``search`` and ``order_by`` are the caller's and may use only fields visible on every
        document the actor can list; ``link`` is a relation the system follows for the caller
        (see ``Link``)."""
        backward = last is not None
        size = last if backward else first
        if size < 0:
            name = "last" if backward else "first"
            raise BadUserInput(f"'{name}' must not be negative.", {name: "negative"})
        size = min(size, MAX_PAGE_SIZE)
        entity_type = self.access.entity_type(slug)
        scope, linked = await self._list_scope(entity_type, link)
        allowed = self.access.filterable_fields(slug)
        conditions = build_filter(entity_type, where, search, allowed)
        conditions.extend(linked)
        spec = sort_spec(entity_type, order_by, allowed)
        if after:
            conditions.append(cursor_condition(after, spec))
        if before:
            conditions.append(cursor_condition(before, spec, before=True))
        if scope.empty or size == 0:
            return Page([])
        docs = await self._col.find(
            self._org,
            _and({"type": slug}, scope.filter, *conditions),
            sort=reverse_spec(spec) if backward else spec,
            limit=size + 1,
        )
        more = len(docs) > size
        docs = docs[:size]
        if backward:
            docs.reverse()
        reveal = await self._revealer(slug, Action.LIST)
        items = [entity for doc in docs if (entity := reveal(doc)) is not None]
        # Cursors come from the entities: the page need not keep the documents alive while
        # it is served, and what orders it is visible to the actor (``sort_spec``).
        encode = partial(entity_cursor, spec=spec)
        if backward:
            # Items after ``before`` exist (it was one); before the page, when more came back.
            return Page(items, bool(before), encode, has_previous_page=more)
        return Page(items, more, encode, has_previous_page=bool(after))

    async def count(
        self,
        slug: str,
        *,
        where: Mapping[str, Any] | None = None,
        search: str | None = None,
        link: Link | None = None,
    ) -> int:
        entity_type = self.access.entity_type(slug)
        scope, linked = await self._list_scope(entity_type, link)
        conditions = build_filter(entity_type, where, search, self.access.filterable_fields(slug))
        if scope.empty:
            return 0
        return await self._col.count(
            self._org, _and({"type": slug}, scope.filter, *conditions, *linked)
        )

    async def _list_scope(
        self, entity_type: EntityType, link: Link | None
    ) -> tuple[Scope, list[dict[str, Any]]]:
        """The listing scope, and the link's condition when the system follows a relation."""
        slug = entity_type.slug
        if link is None:
            return await self.access.scope(slug, Action.LIST), []
        if entity_type.references.get(link.field) != link.parent.type:
            raise ValueError(f"{slug}.{link.field} does not refer to a {link.parent.type}")
        scope = await self.access.link_scope(slug, link.field)
        return scope, [{f"data.{link.field}": link.parent.id}]

    async def get(self, slug: str, entity_id: str) -> Entity | None:
        """The entity, or None when it is absent or outside the actor's scope."""
        found = await self.get_many(slug, [entity_id])
        return found.get(entity_id)

    async def get_many(self, slug: str, ids: Iterable[str]) -> dict[str, Entity]:
        """One store query for any number of ids; out-of-scope ids are simply missing."""
        wanted = sorted({i for i in ids if isinstance(i, str)})
        scope = await self.access.scope(slug, Action.READ)
        if not wanted or scope.empty:
            return {}
        docs = await self._col.find(
            self._org, _and({"_id": {"$in": wanted}, "type": slug}, scope.filter)
        )
        reveal = await self._revealer(slug, Action.READ)
        found = {d["_id"]: reveal(d) for d in docs}
        return {k: v for k, v in found.items() if v is not None}

    async def get_by_id(self, entity_id: str) -> Entity | None:
        """An entity of any type by its id alone (Relay's ``node``): its type is looked up,
        then it is read like ``get``, so out of scope is absent, as for a typed read. A type
        the role may not read answers None too (the caller cannot tell which it was)."""
        if not isinstance(entity_id, str):
            return None
        doc = await self._col.find_one(self._org, {"_id": entity_id})
        slug = doc.get("type") if doc else None
        if slug not in self.access.types or not self.access.allows(slug, Action.READ):
            return None
        return await self.get(slug, entity_id)

    async def require(self, slug: str, entity_id: str) -> Entity:
        entity = await self.get(slug, entity_id)
        if entity is None:
            raise NotFound(slug, entity_id)
        return entity

    # -- writes -----------------------------------------------------------------------

    async def create(
        self,
        slug: str,
        data: Mapping[str, Any],
        *,
        server_fields: Mapping[str, Any] | None = None,
        entity_id: str | None = None,
        event: str | None = None,
    ) -> Entity:
        """``data`` is caller input under the write mask; ``server_fields`` are set by domain
        code (statuses, credits) and are never taken from a transport's input. Domain code
        (the system actor) may choose the id, e.g. to claim time before the entity exists.
        ``event`` names what happened for live subscribers (``created`` when omitted)."""
        entity_type = self.access.entity_type(slug)
        roles = self.access.require(slug, Action.CREATE)
        self._reject_unknown(entity_type, data)
        values = {k: v for k, v in entity_type.coerce(data).items() if v is not None}
        values.update(entity_type.coerce(server_fields or {}))
        now = _now(self.service.clock)
        if entity_id is not None and not self.actor.is_system:
            raise Forbidden("Only domain operations choose entity ids.")
        doc: dict[str, Any] = {
            "_id": entity_id or str(ObjectId()),
            "type": slug,
            "data": values,
            "createdAt": now,
            "updatedAt": now,
            "createdBy": self.actor.user_id,
            "updatedBy": self.actor.user_id,
            VERSION: 1,
        }
        reaching = [r for r in roles if await self._in_scope_of_any(slug, [r], doc)]
        if not reaching:
            raise Forbidden(f"You may not create this {slug}: it would be outside your scope.")
        self._check_writable(entity_type, Action.CREATE, reaching, data)
        entity_type.validate(values)
        await self._check_references(entity_type, values, from_caller=set(data))
        async with undo_on_failure():
            await self._audit("create", slug, doc["_id"], values.keys(), now)
            try:
                await self._col.insert_one(self._org, doc)
            except DuplicateKey:
                raise Conflict(
                    f"Another {slug} already holds one of these unique values."
                ) from None
            register(
                f"created {slug}", lambda: self._col.delete_one(self._org, {"_id": doc["_id"]})
            )
            await self._links_changed(entity_type, values)
            await self._announce(slug, doc["_id"], event or CREATED)
        return await self._present(slug, Action.READ, doc)

    async def update(
        self,
        slug: str,
        entity_id: str,
        changes: Mapping[str, Any],
        *,
        server_fields: Mapping[str, Any] | None = None,
        event: str | None = None,
    ) -> Entity:
        """Sets fields (None clears one). Optimistic: a concurrent write makes this a
        ``CONFLICT`` rather than validating against a document that no longer exists.
        ``event`` names what happened for live subscribers (``updated`` when omitted)."""
        entity_type = self.access.entity_type(slug)
        self.access.require(slug, Action.UPDATE)
        current, reaching = await self._load_for(slug, entity_id, Action.UPDATE)
        self._reject_unknown(entity_type, changes)
        self._check_writable(entity_type, Action.UPDATE, reaching, changes)
        incoming = {**entity_type.coerce(changes), **entity_type.coerce(server_fields or {})}
        merged = {**current["data"], **incoming}
        merged = {k: v for k, v in merged.items() if v is not None}
        changed = {
            k for k in set(merged) | set(current["data"]) if merged.get(k) != current["data"].get(k)
        }
        if not changed:
            return await self._present(slug, Action.READ, current)
        entity_type.validate(merged, reported=set(incoming))
        candidate = {**current, "data": merged}
        if not await self._in_scope_of_any(slug, reaching, candidate):
            raise Forbidden(f"This change would move the {slug} outside your scope.")
        await self._check_references(
            entity_type, {k: merged[k] for k in changed if k in merged}, from_caller=set(changes)
        )
        now = _now(self.service.clock)
        update: dict[str, Any] = {
            "$set": {
                **{f"data.{k}": merged[k] for k in changed if k in merged},
                "updatedAt": now,
                "updatedBy": self.actor.user_id,
            },
            "$inc": {VERSION: 1},
        }
        unset = {f"data.{k}": "" for k in changed if k not in merged}
        if unset:
            update["$unset"] = unset
        async with undo_on_failure():
            await self._audit("update", slug, entity_id, changed, now)
            try:
                written = await self._col.find_one_and_update(
                    self._org,
                    {"_id": entity_id, "type": slug, VERSION: current.get(VERSION)},
                    update,
                )
            except DuplicateKey:
                raise Conflict(
                    f"Another {slug} already holds one of these unique values."
                ) from None
            if written is None:
                raise Conflict(
                    f"The {slug} was changed by someone else meanwhile; reload and retry."
                )
            self._register_restore(slug, current, written)
            await self._links_changed(entity_type, changed)
            await self._announce(slug, entity_id, event or UPDATED)
        return await self._present(slug, Action.READ, written)

    async def view(self, entity: Entity) -> Entity | None:
        """An entity obtained by domain code (the system actor), as this actor may see it:
        None outside their scope, masked inside it. No store query."""
        doc = {
            "_id": entity.id,
            "type": entity.type,
            "data": dict(entity.data),
            "createdAt": entity.created_at,
            "updatedAt": entity.updated_at,
        }
        return await self._reveal(entity.type, Action.READ, doc)

    async def may_create(self, slug: str, data: Mapping[str, Any]) -> None:
        """For domain operations that create on the caller's behalf (booking): the caller's
        policy must allow ``create`` and the new entity must fall inside their scope."""
        roles = self.access.require(slug, Action.CREATE)
        candidate = {"_id": "", "type": slug, "data": dict(data)}
        if not await self._in_scope_of_any(slug, roles, candidate):
            raise Forbidden(f"You may not create this {slug}: it would be outside your scope.")

    async def atomic_update(
        self,
        slug: str,
        entity_id: str,
        *,
        condition: Mapping[str, Any],
        update: Mapping[str, Mapping[str, Any]],
        event: str | None = None,
    ) -> Entity | None:
        """One conditional, atomic update for domain code (credits, status transitions):
        applied only if ``condition`` (on ``data.*`` paths) holds at write time; None when it
        did not. Only the system actor may use it: callers reach it through a domain
        operation that has already checked the user's permissions and rules. ``event``
        names what happened for live subscribers (``updated`` when omitted)."""
        if not self.actor.is_system:
            raise Forbidden("Atomic updates are reserved for domain operations.")
        now = _now(self.service.clock)
        ops = {op: dict(fields) for op, fields in update.items()}
        ops.setdefault("$set", {}).update({"updatedAt": now, "updatedBy": self.actor.user_id})
        ops.setdefault("$inc", {})[VERSION] = 1
        changed = {
            path.removeprefix("data.").split(".")[0]
            for op, fields in update.items()
            for path in fields
        }
        entry = await self._audit("update", slug, entity_id, changed, now)
        try:
            written = await self._col.find_one_and_update(
                self._org, {"_id": entity_id, "type": slug, **condition}, ops
            )
        except BaseException:
            await self._forget(entry)
            raise
        if written is None:
            await self._forget(entry)
            return None
        await self._announce(slug, entity_id, event or UPDATED)
        return await self._present(slug, Action.READ, written)

    async def internal_state(self, slug: str, entity_id: str) -> dict[str, Any] | None:
        """Unmasked ``data`` and the ``internal`` bookkeeping of domain code, for the system
        actor only (the counterpart of ``atomic_update``)."""
        if not self.actor.is_system:
            raise Forbidden("Internal state is reserved for domain operations.")
        doc = await self._col.find_one(self._org, {"_id": entity_id, "type": slug})
        if doc is None:
            return None
        return {"data": doc.get("data", {}), "internal": doc.get("internal", {})}

    async def delete(self, slug: str, entity_id: str) -> str:
        entity_type = self.access.entity_type(slug)
        self.access.require(slug, Action.DELETE)
        current, _ = await self._load_for(slug, entity_id, Action.DELETE)
        referrers = [
            {"type": other.slug, f"data.{field}": entity_id}
            for other in self.access.types.values()
            for field, target in other.references.items()
            if target == entity_type.slug
        ]
        if referrers:
            used_by = await self._col.distinct(self._org, "type", {"$or": referrers})
            if used_by:
                raise Conflict(
                    f"This {slug} is still referenced by {', '.join(sorted(used_by))} "
                    "entities; remove or reassign those first.",
                    details={"referencedBy": sorted(used_by)},
                )
        async with undo_on_failure():
            await self._audit("delete", slug, entity_id, (), _now(self.service.clock))
            deleted = await self._col.delete_one(
                self._org, {"_id": entity_id, "type": slug, VERSION: current.get(VERSION)}
            )
            if not deleted:
                raise Conflict(
                    f"The {slug} was changed by someone else meanwhile; reload and retry."
                )
            register(f"deleted {slug}", lambda: self._col.insert_one(self._org, current))
            await self._links_changed(entity_type, current.get("data", {}))
            await self._announce(slug, entity_id, DELETED)
        return entity_id

    # -- helpers ----------------------------------------------------------------------

    async def _load_for(
        self, slug: str, entity_id: str, action: Action
    ) -> tuple[dict[str, Any], list[RoleDefinition]]:
        """The document and the roles that reach it for ``action``, or ``NOT_FOUND``."""
        scope = await self.access.scope(slug, action)
        doc = None
        if isinstance(entity_id, str) and not scope.empty:
            doc = await self._col.find_one(
                self._org, _and({"_id": entity_id, "type": slug}, scope.filter)
            )
        roles = await self.access.reaching_roles(slug, action, doc) if doc else []
        if doc is None or not roles:
            raise NotFound(slug, entity_id)
        return doc, roles

    async def _revealer(
        self, slug: str, action: Action
    ) -> Callable[[dict[str, Any]], Entity | None]:
        """``_reveal`` for many documents just read from the store: the roles' scopes are
        looked up once, and each document's own data becomes its entity's, masked in place
        (reads hand out documents of their own, see ``RawCollection``)."""
        scopes = [
            (role, await self.access.role_scope(role, slug))
            for role in self.access.roles_for(slug, action)
        ]
        if len(scopes) == 1:  # most actors: one role, so one mask for every document
            ((role, scope),) = scopes
            admits = scope.predicate
            if self.access.compiled.conditional_fields(slug, [role]):
                mask = self.access.mask(slug, [role])

                def reveal_conditional(doc: dict[str, Any]) -> Entity | None:
                    return _masked_in_place(slug, doc, mask(doc)) if admits(doc) else None

                return reveal_conditional
            visible = self.access.visible_fields(slug, [role])

            def reveal_one(doc: dict[str, Any]) -> Entity | None:
                return _masked_in_place(slug, doc, visible) if admits(doc) else None

            return reveal_one

        def reveal(doc: dict[str, Any]) -> Entity | None:
            roles = [role for role, scope in scopes if scope.predicate(doc)]
            if not roles:
                return None
            return _masked_in_place(slug, doc, self.access.visible_on(slug, roles, doc))

        return reveal

    async def _reveal(self, slug: str, action: Action, doc: dict[str, Any]) -> Entity | None:
        """The masked entity; None if no role's predicate admits a document the filter
        matched (a backend disagreeing with the rule): fail closed, never unmasked."""
        roles = await self.access.reaching_roles(slug, action, doc)
        return self._entity(slug, doc, roles) if roles else None

    async def _in_scope_of_any(
        self, slug: str, roles: list[RoleDefinition], doc: dict[str, Any]
    ) -> bool:
        for role in roles:
            if (await self.access.role_scope(role, slug)).predicate(doc):
                return True
        return False

    async def _present(self, slug: str, action: Action, doc: Mapping[str, Any]) -> Entity:
        """The entity as returned by a write: what the writer may read of it, possibly
        nothing but its id."""
        roles = await self.access.reaching_roles(slug, action, dict(doc))
        return self._entity(slug, doc, roles)

    def _entity(self, slug: str, doc: Mapping[str, Any], roles: list[RoleDefinition]) -> Entity:
        """The entity of a document the caller keeps using (a write's): its data copied."""
        visible = self.access.visible_on(slug, roles, doc)
        return _masked_in_place(slug, {**doc, "data": dict(doc.get("data", {}))}, visible)

    @staticmethod
    def _reject_unknown(entity_type: EntityType, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - set(entity_type.fields))
        if unknown:
            raise BadUserInput(
                f"{entity_type.slug} has no field(s) {', '.join(unknown)}.",
                {name: "is not a field of this type" for name in unknown},
            )

    def _check_writable(
        self,
        entity_type: EntityType,
        action: Action,
        roles: list[RoleDefinition],
        data: Mapping[str, Any],
    ) -> None:
        writable = self.access.writable_fields(entity_type.slug, action, roles)
        refused = sorted(set(data) - writable)
        if refused:
            raise Forbidden(
                f"You may not set {', '.join(refused)} on a {entity_type.slug}.",
                details={"fields": {f: "is not writable by your role" for f in refused}},
            )

    async def _check_references(
        self, entity_type: EntityType, values: Mapping[str, Any], *, from_caller: set[str]
    ) -> None:
        """Links the caller typed must point at an entity of the right type inside the
        caller's read scope, with the same error for absent and out-of-scope ids (no
        existence oracle). Links set by domain code (``server_fields``) were resolved by that
        code under the caller's scope and are not looked up again."""
        errors: dict[str, str] = {}
        for field, target in entity_type.references.items():
            value = values.get(field)
            if field not in from_caller or not isinstance(value, str):
                continue
            readable = self.access.allows(target, Action.READ)
            if not (readable and await self.get_many(target, [value])):
                errors[field] = f"no {target} with this id"
        if errors:
            raise BadUserInput(f"Invalid references on {entity_type.slug}.", errors)

    async def _audit(
        self, action: str, slug: str, entity_id: str, fields: Iterable[str], at: datetime
    ) -> str | None:
        """Recorded before the write it describes (see ``AuditLog.record``)."""
        return await self.service.audit.record(
            self.actor, action, at=at, entity_type=slug, entity_id=entity_id, fields=fields
        )

    async def _links_changed(self, entity_type: EntityType, fields: Iterable[str]) -> None:
        """A write that links a user to an entity (or unlinks one) changes the actors that
        every API process has cached for the organization: bump its version."""
        if entity_type.actor_link and entity_type.user_link_field in fields:
            await self.service.states.changed(self._org)

    async def _announce(self, slug: str, entity_id: str, event: str) -> None:
        """Every committed write of an entity passes here (held until the outermost
        operation succeeds): live subscribers hear of it and read it again as themselves."""
        await self.service.changes.record(self._org, slug, entity_id, event)

    async def _forget(self, entry: str | None) -> None:
        """Takes back the audit entry of a write that did not happen."""
        if entry is not None:
            await self.service.audit.discard(self._org, entry)

    def _register_restore(
        self, slug: str, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        """If the operation around this update fails, puts the data back -- unless someone
        changed the entity since, whose write must not be lost (logged instead)."""

        async def restore() -> None:
            restored = await self._col.find_one_and_update(
                self._org,
                {"_id": after["_id"], "type": slug, VERSION: after.get(VERSION)},
                {"$set": {"data": before["data"], "updatedAt": before["updatedAt"]},
                 "$inc": {VERSION: 1}},
            )  # fmt: skip
            if restored is None:
                raise Conflict(f"the {slug} {after['_id']} changed again; not restored")

        register(f"updated {slug}", restore)
