"""Per-organization tutoring settings, admin-editable, with the business's defaults.

``hideHourlyRateFromTeachers`` is not stored with the others: it is read from, and written
to, the teacher role's read mask for teachers, so the mask stays the single place that decides
what a teacher sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.platform.api_limits import ApiLimits
from app.platform.entities import ActorEntities
from app.platform.org_settings import SettingsRepository
from app.platform.permissions import Action, ReadMask
from app.platform.store import Store
from app.platform.undo import Undo, undo_on_failure
from app.tutoring.roles import BOOKING_POLICY_RESOURCE, SETTINGS_RESOURCE, TEACHER

NAMESPACE = "tutoring"
RATE_FIELD = "hourlyRate"
HIDE_RATE = "hideHourlyRateFromTeachers"
_DAY = 24 * 60


class TutoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organizationName: str | None = Field(None, max_length=200, description="For the agent")
    timezone: str = Field("UTC", description="Organization time zone (IANA)")
    minBookingLeadMinutes: int = Field(24 * 60, ge=0, le=90 * _DAY)
    rescheduleCutoffMinutes: int = Field(120, ge=0, le=30 * _DAY)
    guardianCancelCutoffMinutes: int | None = Field(
        None, ge=0, le=30 * _DAY, description="null: the reschedule cutoff"
    )
    bufferMinutes: int = Field(15, ge=0, le=240)
    maxReschedules: int = Field(2, ge=0, le=50)
    noShowGraceMinutes: int = Field(15, ge=0, le=240)
    slotIntervalMinutes: int = Field(15, ge=5, le=240)
    teacherEarlyStartMinutes: int = Field(10, ge=0, le=120)
    autoStartSessions: bool = Field(
        False,
        description="true: a scheduled session becomes IN_PROGRESS at its start time. "
        "false: the teacher starts it, and one not started by start + grace becomes NO_SHOW.",
    )
    paymentHoldMinutes: int = Field(60, ge=5, le=7 * _DAY)
    sessionPricePerHour: float = Field(50.0, ge=0)
    currency: str = Field("USD", pattern="^[A-Z]{3}$")
    defaultDurationMinutes: int = Field(60, ge=5, le=600)
    reminderLeadMinutes: int = Field(20 * 60, ge=0, le=14 * _DAY)
    lowCreditsThreshold: int = Field(1, ge=0, le=100)
    expiryWarningDays: list[int] = Field(default_factory=lambda: [7, 1], max_length=10)

    @field_validator("expiryWarningDays")
    @classmethod
    def _positive_days(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 365 for d in value):
            raise ValueError("days must be between 1 and 365")
        return sorted(set(value), reverse=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("not a known IANA time zone") from None
        return value

    @field_validator("slotIntervalMinutes")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if _DAY % value:
            raise ValueError("must divide a day evenly (e.g. 5, 10, 15, 20, 30, 60)")
        return value

    @property
    def guardian_cancel_cutoff(self) -> int:
        if self.guardianCancelCutoffMinutes is None:
            return self.rescheduleCutoffMinutes
        return self.guardianCancelCutoffMinutes


async def load_settings(store: Store, org: str) -> TutoringSettings:
    """For rules: no permission check, the rules apply to everyone."""
    return await SettingsRepository(store).get(org, NAMESPACE, TutoringSettings)


async def read_settings(entities: ActorEntities) -> dict[str, Any]:
    """Admin view: the stored settings, the mask-derived rate setting and the organization's
    API limits (stored by the platform)."""
    entities.access.require_resource(SETTINGS_RESOURCE, Action.READ)
    org = entities.actor.organization_id
    settings = await load_settings(entities.service.store, org)
    limits = await entities.service.limits.get(org)
    return {
        **settings.model_dump(),
        **limits.model_dump(),
        HIDE_RATE: await _rate_hidden(entities),
    }


async def read_booking_policy(entities: ActorEntities) -> dict[str, Any]:
    """What a booking screen needs to explain the rules before a booking is refused: lead
    time, cutoffs, reschedule limit, price, time zone, durations and the slot grid. Every role
    of the organization may read it (``BOOKING_POLICY_RESOURCE`` in roles.py); nothing else of
    the settings leaves here (jobs, buffers, the rate mask, limits stay admin-only). The guardian
    cancel cutoff is the one that applies, never null."""
    entities.access.require_resource(BOOKING_POLICY_RESOURCE, Action.READ)
    s = await entities.access.state.settings(NAMESPACE, TutoringSettings)
    return {
        "timezone": s.timezone,
        "minBookingLeadMinutes": s.minBookingLeadMinutes,
        "rescheduleCutoffMinutes": s.rescheduleCutoffMinutes,
        "guardianCancelCutoffMinutes": s.guardian_cancel_cutoff,
        "maxReschedules": s.maxReschedules,
        "sessionPricePerHour": s.sessionPricePerHour,
        "currency": s.currency,
        "defaultDurationMinutes": s.defaultDurationMinutes,
        "slotIntervalMinutes": s.slotIntervalMinutes,
    }


async def update_settings(entities: ActorEntities, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Admin only; all-or-nothing: invalid values change nothing."""
    entities.access.require_resource(SETTINGS_RESOURCE, Action.UPDATE)
    changes = dict(changes)
    hide = changes.pop(HIDE_RATE, None)
    api = {k: changes.pop(k) for k in list(changes) if k in ApiLimits.model_fields}
    org = entities.actor.organization_id
    repo = SettingsRepository(entities.service.store)
    # Everything is validated before the first write, and each write is taken back if a later
    # one fails: a bad value or a failing store changes nothing.
    current = await repo.get(org, NAMESPACE, TutoringSettings)
    merged = repo.validate(current, changes)
    limits = await entities.service.limits.get(org)
    new_limits = repo.validate(limits, api)
    if not (changes or api or hide is not None):
        return await read_settings(entities)
    async with undo_on_failure() as undo:
        await entities.service.audit.record(
            entities.actor,
            "settings.update",
            at=entities.service.clock(),
            fields=[*changes, *api, *([HIDE_RATE] if hide is not None else [])],
        )
        if changes:
            await repo.write(org, NAMESPACE, merged)
            undo.push("settings", lambda: repo.write(org, NAMESPACE, current))
        if api:
            await entities.service.limits.update(org, new_limits.model_dump())
            restore = limits.model_dump()
            undo.push("api limits", lambda: entities.service.limits.update(org, restore))
        if hide is not None:
            await _set_rate_hidden(entities, bool(hide), undo)
    return await read_settings(entities)


async def _rate_hidden(entities: ActorEntities) -> bool:
    roles = await entities.service.roles.for_names(entities.actor.organization_id, [TEACHER])
    mask = roles[0].read_mask("teacher") if roles else None
    return mask is None or RATE_FIELD not in mask.visible([RATE_FIELD])


async def _set_rate_hidden(entities: ActorEntities, hidden: bool, undo: Undo) -> None:
    """Adds or removes the one field, keeping the rest of an organization's mask."""
    org = entities.actor.organization_id
    roles = await entities.service.roles.for_names(org, [TEACHER])
    if not roles:
        return
    before = roles[0].read_mask("teacher")
    mask = before or ReadMask(mode="whitelist")
    listed = hidden if mask.mode == "blacklist" else not hidden
    fields = set(mask.fields) | {RATE_FIELD} if listed else set(mask.fields) - {RATE_FIELD}
    new_mask = mask.model_copy(update={"fields": tuple(sorted(fields))})  # keeps visibleWhen
    await entities.service.roles.set_read_mask(org, TEACHER, "teacher", new_mask)
    roles_repo = entities.service.roles
    undo.push("teacher mask", lambda: roles_repo.set_read_mask(org, TEACHER, "teacher", before))


async def teacher_rate_hidden(entities: ActorEntities) -> bool:
    entities.access.require_resource(SETTINGS_RESOURCE, Action.READ)
    return await _rate_hidden(entities)


async def set_teacher_rate_hidden(entities: ActorEntities, hidden: bool) -> bool:
    return (await update_settings(entities, {HIDE_RATE: hidden}))[HIDE_RATE]
