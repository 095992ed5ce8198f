"""Mutations: each one is a call to the secure entity service or to a pack operation.
Annotations are evaluated eagerly (no ``from __future__``) because the create/update/delete
triples are built by one factory."""

from typing import Any

import strawberry
from strawberry.types import Info

from app.graphql.inputs import (
    CreateEntitlementInput,
    CreateGuardianInput,
    CreatePaymentInput,
    CreateStudentInput,
    CreateTeacherInput,
    UpdateGuardianInput,
    UpdateSessionInput,
    UpdateStudentInput,
    UpdateTeacherInput,
    to_data,
    without_nulls,
)
from app.graphql.queries import EntityType
from app.graphql.types.entities import Entitlement, Guardian, Payment, Session, Student, Teacher
from app.platform.errors import NotFound
from app.platform.packs import install_pack_as
from app.tutoring import billing
from app.tutoring.pack import PACKS
from app.tutoring.students import update_entity


def crud(slug: str, cls: type, create_input: type, update_input: type) -> tuple[Any, Any, Any]:
    """``create<T>(input)``, ``update<T>(id, input)`` and ``delete<T>(id)`` for one type."""

    async def create(info: Info, input: create_input) -> cls:  # type: ignore[valid-type]
        return cls(entity=await info.context.entities.create(slug, without_nulls(to_data(input))))

    async def update(info: Info, id: strawberry.ID, input: update_input) -> cls:  # type: ignore[valid-type]
        return cls(entity=await update_entity(info.context.entities, slug, id, to_data(input)))

    async def delete(info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await info.context.entities.delete(slug, id))

    return (
        strawberry.mutation(resolver=create),
        strawberry.mutation(resolver=update, description="Omitted fields are kept; null clears."),
        strawberry.mutation(resolver=delete, description="CONFLICT while others refer to it."),
    )


@strawberry.type
class CoreMutation:
    @strawberry.mutation(description="Admin. Idempotent: adds what the organization lacks.")
    async def installPack(self, info: Info, slug: str) -> list[EntityType]:
        pack = PACKS.get(slug)
        if pack is None:
            raise NotFound("pack", slug)
        types = await install_pack_as(info.context.entities, pack)
        return [EntityType(slug=t.slug, name=t.name, description=t.description) for t in types]

    createTeacher, updateTeacher, deleteTeacher = crud(
        "teacher", Teacher, CreateTeacherInput, UpdateTeacherInput
    )
    createStudent, updateStudent, deleteStudent = crud(
        "student", Student, CreateStudentInput, UpdateStudentInput
    )
    createGuardian, updateGuardian, deleteGuardian = crud(
        "guardian", Guardian, CreateGuardianInput, UpdateGuardianInput
    )

    @strawberry.mutation(description="Notes and report fields, as your role's write mask allows.")
    async def updateSession(
        self, info: Info, id: strawberry.ID, input: UpdateSessionInput
    ) -> Session:
        return Session(entity=await info.context.entities.update("session", id, to_data(input)))

    @strawberry.mutation(description="Admin. The payment starts PENDING.")
    async def createPayment(self, info: Info, input: CreatePaymentInput) -> Payment:
        data = without_nulls(to_data(input))
        return Payment(entity=await billing.create_payment(info.context.entities, data))

    @strawberry.mutation(description="Admin. The pack starts ACTIVE with all its credits.")
    async def createEntitlement(self, info: Info, input: CreateEntitlementInput) -> Entitlement:
        data = without_nulls(to_data(input))
        return Entitlement(entity=await billing.create_entitlement(info.context.entities, data))
