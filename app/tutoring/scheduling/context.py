"""What every scheduling operation needs: the caller, a domain view acting for them, the
organization's settings, the clock and the calendars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.platform.calendar import ResourceCalendar
from app.platform.entities import ActorEntities
from app.platform.errors import Conflict
from app.tutoring.settings import TutoringSettings, load_settings

# A claim not confirmed within this time (the booking crashed) stops blocking the slot.
PROVISIONAL = timedelta(minutes=2)


def teacher_resource(teacher_id: str) -> str:
    return f"teacher:{teacher_id}"


def student_resource(student_id: str) -> str:
    return f"student:{student_id}"


@dataclass
class Scheduling:
    entities: ActorEntities  # the caller: permissions and scope are checked with this
    domain: ActorEntities  # the system acting for the caller: writes the consequences
    settings: TutoringSettings
    now: datetime
    calendar: ResourceCalendar

    @property
    def org(self) -> str:
        return self.entities.actor.organization_id

    @property
    def roles(self) -> frozenset[str]:
        return self.entities.actor.roles

    async def state(self, slug: str, entity_id: str) -> dict[str, Any]:
        """Unmasked data of an entity the caller has already been shown to reach."""
        found = await self.domain.internal_state(slug, entity_id)
        if found is None:  # deleted in between
            raise Conflict(f"The {slug} changed meanwhile; reload and retry.")
        return found["data"]

    async def claim(
        self,
        teacher_id: str,
        student_id: str,
        owner: str,
        start: datetime,
        end: datetime,
        *,
        move: bool = False,
    ) -> list[tuple[str, str]]:
        """Claims the teacher's time (with the buffer on both sides) and the student's, both
        or neither. Returns (resource, claim id) pairs, provisional until confirmed."""
        cal, org = self.calendar, self.org
        expires = self.now + PROVISIONAL
        ignore = owner if move else None
        t_res, s_res = teacher_resource(teacher_id), student_resource(student_id)
        await cal.prune(org, t_res)
        t_claim = await cal.claim(
            org,
            t_res,
            owner=owner,
            start=start,
            end=end,
            padding=timedelta(minutes=self.settings.bufferMinutes),
            expires_at=expires,
            ignore_owner=ignore,
            conflict_message=(
                "The teacher already has a session at that time or within "
                f"{self.settings.bufferMinutes} minutes of it."
            ),
        )
        try:
            s_claim = await cal.claim(
                org,
                s_res,
                owner=owner,
                start=start,
                end=end,
                expires_at=expires,
                ignore_owner=ignore,
                conflict_message="The student already has a session at that time.",
            )
        except Exception:
            await cal.release(org, t_res, claim_id=t_claim)
            raise
        return [(t_res, t_claim), (s_res, s_claim)]

    async def confirm(self, claims: list[tuple[str, str]], expires_at: datetime | None) -> None:
        for resource, claim_id in claims:
            await self.calendar.set_expiry(self.org, resource, claim_id, expires_at)

    async def release(self, claims: list[tuple[str, str]]) -> None:
        for resource, claim_id in claims:
            await self.calendar.release(self.org, resource, claim_id=claim_id)

    async def release_session(
        self, session: dict[str, Any], owner: str, keep: list[tuple[str, str]] | None = None
    ) -> None:
        """Frees every claim of a session, except the (resource, claim id) pairs in ``keep``."""
        kept = dict(keep or [])
        for resource in (
            teacher_resource(session["teacherId"]),
            student_resource(session["studentId"]),
        ):
            await self.calendar.release(self.org, resource, owner=owner, keep=kept.get(resource))


async def scheduling(entities: ActorEntities, purpose: str) -> Scheduling:
    service = entities.service
    actor = entities.actor
    domain = entities if actor.is_system else await service.for_actor(actor.acting_for(purpose))
    return Scheduling(
        entities=entities,
        domain=domain,
        settings=await load_settings(service.store, actor.organization_id),
        now=service.clock(),
        calendar=ResourceCalendar(service.store, clock=service.clock),
    )
