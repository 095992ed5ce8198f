"""Changing a student: their sessions follow them to a new guardian.

A session's ``guardianId`` is the guardian of its student, copied at booking so a guardian's
scope is one indexed field. When an admin moves a student to another guardian (a custody
change, a family's records fixed), every session of that student moves with them: the new
guardian sees, pays for and is reminded of them, and the old guardian's scope no longer
reaches them (their live subscriptions get a final ``removed`` event). Payments and packs stay
with the guardian who bought them. Student and sessions change together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.undo import undo_on_failure

STUDENT = "student"


async def update_student(
    entities: ActorEntities, student_id: str, changes: Mapping[str, Any]
) -> Entity:
    """``entities.update`` for a student, as the caller, plus the sessions that follow."""
    domain = await entities.service.for_actor(
        entities.actor.acting_for("student.moved"), entities.access.state
    )
    async with undo_on_failure():
        before = await domain.internal_state(STUDENT, student_id)
        updated = await entities.update(STUDENT, student_id, changes)
        after = await domain.internal_state(STUDENT, student_id)
        old = (before or {}).get("data", {}).get("guardianId")
        new = (after or {}).get("data", {}).get("guardianId")
        if isinstance(new, str) and new != old:
            await _move_sessions(domain, student_id, new)
    return updated


async def _move_sessions(domain: ActorEntities, student_id: str, guardian_id: str) -> None:
    after: str | None = None
    while True:
        page = await domain.query(
            "session", where={"studentId": student_id}, first=100, after=after
        )
        for session in page.items:
            if session.data.get("guardianId") != guardian_id:
                await domain.update(
                    "session", session.id, {}, server_fields={"guardianId": guardian_id}
                )
        if not page.has_next_page:
            return
        after = page.end_cursor


async def update_entity(
    entities: ActorEntities, slug: str, entity_id: str, changes: Mapping[str, Any]
) -> Entity:
    """The pack's generic update (GraphQL's update mutations, the agent's entity.update):
    a student's through ``update_student``, anything else straight to the service."""
    if slug == STUDENT:
        return await update_student(entities, entity_id, changes)
    return await entities.update(slug, entity_id, changes)
