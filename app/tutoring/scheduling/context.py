"""What every scheduling operation needs: the caller, a domain view acting for them, the
organization's settings, the clock and the calendars."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.platform.calendar import ResourceCalendar
from app.platform.entities import ActorEntities
from app.platform.errors import Conflict, NotFound
from app.platform.permissions import Action
from app.platform.undo import register
from app.tutoring.settings import NAMESPACE, TutoringSettings

log = logging.getLogger(__name__)

# A claim older than this whose session does not exist was left by a crashed booking.
ORPHAN_AFTER = timedelta(minutes=2)


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

    async def roles_reaching(self, session_id: str, session: dict[str, Any]) -> frozenset[str]:
        """The caller's roles whose own scope reaches this session: a teacher who is also a
        guardian acts on their child's session as a guardian, never as its teacher."""
        if self.entities.actor.is_system:
            return self.entities.actor.roles
        doc = {"_id": session_id, "type": "session", "data": session}
        roles = await self.entities.access.reaching_roles("session", Action.READ, doc)
        return frozenset(r.name for r in roles)

    def revert_on_failure(
        self,
        slug: str,
        entity_id: str,
        before: dict[str, Any],
        keys: Iterable[str],
        condition: dict[str, Any],
    ) -> None:
        """If the operation fails later, puts ``keys`` back as they were in ``before``,
        provided ``condition`` still holds (nobody has moved the entity on since)."""
        keys = list(keys)
        update: dict[str, dict[str, Any]] = {}
        restored = {f"data.{k}": before[k] for k in keys if before.get(k) is not None}
        absent = {f"data.{k}": "" for k in keys if before.get(k) is None}
        if restored:
            update["$set"] = restored
        if absent:
            update["$unset"] = absent

        async def revert() -> None:
            await self.domain.atomic_update(slug, entity_id, condition=condition, update=update)

        register(f"{slug} {entity_id}", revert)

    async def claims_of(self, session: dict[str, Any], owner: str) -> list[tuple[str, str]]:
        """The (resource, claim id) pairs a session holds now."""
        out = []
        for resource in (
            teacher_resource(session["teacherId"]),
            student_resource(session["studentId"]),
        ):
            for interval in await self.calendar.claims_of(self.org, resource, owner):
                out.append((resource, interval.claim_id))
        return out

    async def reach(self, slug: str, entity_id: str) -> dict[str, Any]:
        """Unmasked data of an entity the caller's roles reach, in one read: ``NOT_FOUND``
        when absent or outside the caller's scope (as ``require``), ``FORBIDDEN`` when the
        caller's roles may not read the type at all."""
        self.entities.access.require(slug, Action.READ)
        found = (
            await self.domain.internal_state(slug, entity_id)
            if isinstance(entity_id, str)
            else None
        )
        doc = {"_id": entity_id, "type": slug, "data": (found or {}).get("data", {})}
        if found is None or not await self.entities.access.reaching_roles(slug, Action.READ, doc):
            raise NotFound(slug, entity_id)
        return found["data"]

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
        expires_at: datetime | None = None,
        move: bool = False,
    ) -> list[tuple[str, str]]:
        """Claims the teacher's time (with the buffer on both sides) and the student's, both
        or neither. Returns (resource, claim id) pairs."""
        buffer = timedelta(minutes=self.settings.bufferMinutes)
        t_res = teacher_resource(teacher_id)
        t_claim = await self._claim_one(
            t_res, owner, start, end, buffer, expires_at, move,
            "The teacher already has a session at that time or within "
            f"{self.settings.bufferMinutes} minutes of it.",
        )  # fmt: skip
        s_res = student_resource(student_id)
        try:
            s_claim = await self._claim_one(
                s_res, owner, start, end, timedelta(0), expires_at, move,
                "The student already has a session at that time.",
            )  # fmt: skip
        except BaseException:
            await self.calendar.release(self.org, t_res, claim_id=t_claim)
            raise
        return [(t_res, t_claim), (s_res, s_claim)]

    async def _claim_one(
        self,
        resource: str,
        owner: str,
        start: datetime,
        end: datetime,
        padding: timedelta,
        expires_at: datetime | None,
        move: bool,
        message: str,
    ) -> str:
        async def attempt() -> str:
            return await self.calendar.claim(
                self.org, resource, owner=owner, start=start, end=end, padding=padding,
                expires_at=expires_at, ignore_owner=owner if move else None,
                conflict_message=message,
            )  # fmt: skip

        try:
            return await attempt()
        except Conflict:
            if not await self._clear_orphans(resource, start - padding, end + padding, owner):
                raise
            return await attempt()

    async def _clear_orphans(
        self, resource: str, start: datetime, end: datetime, owner: str
    ) -> bool:
        """Releases clashing claims whose session was never written (the booking crashed
        between claim and write). Fresh claims are left alone: their booking may be running."""
        stale = [
            i
            for i in await self.calendar.busy(self.org, [resource], start, end)
            if i.owner != owner and i.claimed_at and i.claimed_at < self.now - ORPHAN_AFTER
        ]
        if not stale:
            return False
        existing = await self.domain.get_many("session", [i.owner for i in stale])
        orphans = [i for i in stale if i.owner not in existing]
        for interval in orphans:
            await self.calendar.release(self.org, resource, claim_id=interval.claim_id)
        return bool(orphans)

    async def prune(self, session: dict[str, Any]) -> None:
        """Drops long-past intervals from the session's calendars (done after completion, so
        a calendar holds little more than the future). Housekeeping: a failure is logged and
        the next completion prunes instead."""
        for resource in (
            teacher_resource(session["teacherId"]),
            student_resource(session["studentId"]),
        ):
            try:
                await self.calendar.prune(self.org, resource)
            except Exception:
                log.warning("could not prune the calendar %s of %s", resource, self.org)

    async def confirm(self, claims: list[tuple[str, str]], expires_at: datetime | None) -> None:
        """Makes claims holds until ``expires_at``, or permanent (None)."""
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
    domain = (
        entities
        if actor.is_system
        else await service.for_actor(actor.acting_for(purpose), entities.access.state)
    )
    return Scheduling(
        entities=entities,
        domain=domain,
        settings=await entities.access.state.settings(NAMESPACE, TutoringSettings),
        now=service.clock(),
        calendar=ResourceCalendar(service.store, clock=service.clock),
    )
