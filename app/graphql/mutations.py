"""Mutations: each one is a call to the secure entity service or to a pack operation."""

from __future__ import annotations

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
from app.graphql.queries import EntityType, OrganizationSettings
from app.graphql.types.entities import Entitlement, Guardian, Payment, Session, Student, Teacher
from app.platform.errors import NotFound
from app.platform.packs import install_pack_as
from app.tutoring import billing
from app.tutoring.pack import PACKS
from app.tutoring.settings import set_teacher_rate_hidden, teacher_rate_hidden


@strawberry.input
class OrganizationSettingsInput:
    hideHourlyRateFromTeachers: bool | None = None


def _entities(info: Info):
    return info.context.entities


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Admin. Idempotent: adds what the organization lacks.")
    async def installPack(self, info: Info, slug: str) -> list[EntityType]:
        pack = PACKS.get(slug)
        if pack is None:
            raise NotFound("pack", slug)
        types = await install_pack_as(_entities(info), pack)
        return [EntityType(slug=t.slug, name=t.name, description=t.description) for t in types]

    @strawberry.mutation
    async def createTeacher(self, info: Info, input: CreateTeacherInput) -> Teacher:
        return Teacher(
            entity=await _entities(info).create("teacher", without_nulls(to_data(input)))
        )

    @strawberry.mutation
    async def updateTeacher(
        self, info: Info, id: strawberry.ID, input: UpdateTeacherInput
    ) -> Teacher:
        return Teacher(entity=await _entities(info).update("teacher", id, to_data(input)))

    @strawberry.mutation
    async def deleteTeacher(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await _entities(info).delete("teacher", id))

    @strawberry.mutation
    async def createStudent(self, info: Info, input: CreateStudentInput) -> Student:
        return Student(
            entity=await _entities(info).create("student", without_nulls(to_data(input)))
        )

    @strawberry.mutation
    async def updateStudent(
        self, info: Info, id: strawberry.ID, input: UpdateStudentInput
    ) -> Student:
        return Student(entity=await _entities(info).update("student", id, to_data(input)))

    @strawberry.mutation
    async def deleteStudent(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await _entities(info).delete("student", id))

    @strawberry.mutation
    async def createGuardian(self, info: Info, input: CreateGuardianInput) -> Guardian:
        data = without_nulls(to_data(input))
        return Guardian(entity=await _entities(info).create("guardian", data))

    @strawberry.mutation
    async def updateGuardian(
        self, info: Info, id: strawberry.ID, input: UpdateGuardianInput
    ) -> Guardian:
        return Guardian(entity=await _entities(info).update("guardian", id, to_data(input)))

    @strawberry.mutation
    async def deleteGuardian(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(await _entities(info).delete("guardian", id))

    @strawberry.mutation(description="Notes and report fields, as your role's write mask allows.")
    async def updateSession(
        self, info: Info, id: strawberry.ID, input: UpdateSessionInput
    ) -> Session:
        return Session(entity=await _entities(info).update("session", id, to_data(input)))

    @strawberry.mutation(description="Admin. The payment starts PENDING.")
    async def createPayment(self, info: Info, input: CreatePaymentInput) -> Payment:
        data = without_nulls(to_data(input))
        return Payment(entity=await billing.create_payment(_entities(info), data))

    @strawberry.mutation(description="Admin. The pack starts ACTIVE with all its credits.")
    async def createEntitlement(self, info: Info, input: CreateEntitlementInput) -> Entitlement:
        data = without_nulls(to_data(input))
        return Entitlement(entity=await billing.create_entitlement(_entities(info), data))

    @strawberry.mutation(description="Admin. Omitted or null fields are left unchanged.")
    async def updateOrganizationSettings(
        self, info: Info, input: OrganizationSettingsInput
    ) -> OrganizationSettings:
        entities = _entities(info)
        if input.hideHourlyRateFromTeachers is not None:
            await set_teacher_rate_hidden(entities, input.hideHourlyRateFromTeachers)
        return OrganizationSettings(hideHourlyRateFromTeachers=await teacher_rate_hidden(entities))
