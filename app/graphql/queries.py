"""Query roots. Annotations here are evaluated eagerly (no ``from __future__``) because the
root fields are built by one factory for all six types."""

from typing import Any

import strawberry
from strawberry.types import Info

from app.graphql.filters import (
    EntitlementFilter,
    EntitlementOrder,
    GuardianFilter,
    GuardianOrder,
    PaymentFilter,
    PaymentOrder,
    SessionFilter,
    SessionOrder,
    StudentFilter,
    StudentOrder,
    TeacherFilter,
    TeacherOrder,
    to_order,
    to_query,
)
from app.graphql.permissions import Scoped
from app.graphql.resolvers import connection, get_one
from app.graphql.types.base import Connection, Node, load_one
from app.graphql.types.entities import (
    NODE_TYPES,
    Entitlement,
    Guardian,
    Payment,
    Session,
    Student,
    Teacher,
    wrap,
)
from app.platform.entities.service import MAX_PAGE_SIZE
from app.platform.permissions import Action


def root_fields(slug: str, cls: type, filter_cls: type, order_cls: type) -> tuple[Any, Any]:
    """``<type>(id)`` and ``<type>s(filter, orderBy, first, after)`` for one entity type."""

    async def one(info: Info, id: strawberry.ID) -> cls | None:  # type: ignore[valid-type]
        return await get_one(info, slug, id, cls)

    async def many(
        info: Info,
        filter: filter_cls | None = None,  # type: ignore[valid-type]
        orderBy: list[order_cls] | None = None,  # type: ignore[valid-type]
        first: int = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[cls] | None:  # type: ignore[valid-type]
        where, search = to_query(filter)
        order = to_order(orderBy)
        return await connection(info, slug, cls, where, search, order, first, after, last, before)

    return (
        strawberry.field(
            resolver=one,
            extensions=[Scoped(slug)],
            description="Null when absent or outside your scope.",
        ),
        strawberry.field(
            resolver=many,
            extensions=[Scoped(slug, Action.LIST)],
            description=f"In-scope entities; first and last are capped at {MAX_PAGE_SIZE}; with "
            "last (and before) the page is the last ones before the cursor and first does not "
            "apply. Null, with "
            "an error at this path, when the role may not list them: the operation's other "
            "root fields still answer.",
        ),
    )


@strawberry.type
class Me:
    userId: str
    organizationId: str
    roles: list[str]
    _teacher_id: strawberry.Private[str | None]
    _guardian_id: strawberry.Private[str | None]

    @strawberry.field(extensions=[Scoped("teacher", relation=True)])
    async def teacher(self, info: Info) -> Teacher | None:
        return wrap(Teacher, await load_one(info, "teacher", self._teacher_id))

    @strawberry.field(extensions=[Scoped("guardian", relation=True)])
    async def guardian(self, info: Info) -> Guardian | None:
        return wrap(Guardian, await load_one(info, "guardian", self._guardian_id))


@strawberry.type
class EntityType:
    slug: str
    name: str
    description: str


@strawberry.type
class CoreQuery:
    @strawberry.field
    def me(self, info: Info) -> Me:
        actor = info.context.actor
        return Me(
            userId=actor.user_id,
            organizationId=actor.organization_id,
            roles=sorted(actor.roles),
            _teacher_id=actor.links.get("teacherId"),
            _guardian_id=actor.links.get("guardianId"),
        )

    @strawberry.field(
        description="Relay: any entity by its id. Null when absent, outside your scope or of a "
        "type your role may not read."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        entity = await info.context.entities.get_by_id(str(id))
        if entity is None:
            return None
        info.context.limits.charge(1)
        return info.context.loaders.node(NODE_TYPES[entity.type], entity)

    teacher, teachers = root_fields("teacher", Teacher, TeacherFilter, TeacherOrder)
    student, students = root_fields("student", Student, StudentFilter, StudentOrder)
    guardian, guardians = root_fields("guardian", Guardian, GuardianFilter, GuardianOrder)
    session, sessions = root_fields("session", Session, SessionFilter, SessionOrder)
    payment, payments = root_fields("payment", Payment, PaymentFilter, PaymentOrder)
    entitlement, entitlements = root_fields(
        "entitlement", Entitlement, EntitlementFilter, EntitlementOrder
    )

    @strawberry.field(description="The organization's entity types.")
    def entityTypes(self, info: Info) -> list[EntityType]:
        types = info.context.entities.access.types.values()
        return [EntityType(slug=t.slug, name=t.name, description=t.description) for t in types]
