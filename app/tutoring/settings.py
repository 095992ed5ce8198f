"""Per-organization tutoring settings.

``hideHourlyRateFromTeachers`` is not stored on its own: it is read from, and written to, the
teacher role's read mask for teachers, so the mask stays the single place that decides what a
teacher sees.
"""

from __future__ import annotations

from app.platform.entities import ActorEntities
from app.platform.permissions import Action, ReadMask
from app.tutoring.roles import SETTINGS_RESOURCE, TEACHER

RATE_FIELD = "hourlyRate"


async def teacher_rate_hidden(entities: ActorEntities) -> bool:
    entities.access.require_resource(SETTINGS_RESOURCE, Action.READ)
    return await _rate_hidden(entities)


async def _rate_hidden(entities: ActorEntities) -> bool:
    roles = await entities.service.roles.for_names(entities.actor.organization_id, [TEACHER])
    mask = roles[0].read_mask("teacher") if roles else None
    return mask is None or RATE_FIELD not in mask.visible([RATE_FIELD])


async def set_teacher_rate_hidden(entities: ActorEntities, hidden: bool) -> bool:
    """Admin only. Rewrites the mask by adding or removing the one field, keeping the rest of
    an organization's customisation."""
    entities.access.require_resource(SETTINGS_RESOURCE, Action.UPDATE)
    org = entities.actor.organization_id
    roles = await entities.service.roles.for_names(org, [TEACHER])
    if not roles:
        return hidden
    mask = roles[0].read_mask("teacher") or ReadMask(mode="whitelist")
    fields = set(mask.fields)
    want_listed = hidden if mask.mode == "blacklist" else not hidden
    fields = fields | {RATE_FIELD} if want_listed else fields - {RATE_FIELD}
    new_mask = ReadMask(mode=mask.mode, fields=tuple(sorted(fields)))
    await entities.service.roles.set_read_mask(org, TEACHER, "teacher", new_mask)
    await entities.service.audit.record(
        entities.actor,
        "settings.update",
        at=entities.service.clock(),
        fields=["hideHourlyRateFromTeachers"],
    )
    return await _rate_hidden(entities)
