"""The rules a session's time must satisfy, in one place for booking, rescheduling and
``availableSlots`` alike (so the slots offered are exactly the times a booking accepts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.tutoring.scheduling.availability import Window, fits, on_grid
from app.tutoring.settings import TutoringSettings


def teacher_zone(teacher: Mapping[str, Any], settings: TutoringSettings) -> ZoneInfo:
    return ZoneInfo(teacher.get("timezone") or settings.timezone)


@dataclass(frozen=True)
class TimeRules:
    settings: TutoringSettings
    now: datetime
    tz: ZoneInfo
    windows: Sequence[Window]
    enforce_lead: bool = True

    @classmethod
    def for_teacher(
        cls,
        teacher: Mapping[str, Any],
        settings: TutoringSettings,
        now: datetime,
        *,
        enforce_lead: bool = True,
    ) -> TimeRules:
        return cls(
            settings,
            now,
            teacher_zone(teacher, settings),
            teacher.get("availability") or [],
            enforce_lead,
        )

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.settings.bufferMinutes)

    def violation(self, start: datetime, duration_minutes: int) -> str | None:
        """Why a session at ``start`` cannot take place, or None."""
        s = self.settings
        if self.enforce_lead and start - self.now < timedelta(minutes=s.minBookingLeadMinutes):
            hours = s.minBookingLeadMinutes / 60
            return f"Sessions must be booked at least {hours:g} hours in advance."
        if not on_grid(start, self.tz, s.slotIntervalMinutes):
            return (
                f"Sessions start on the {s.slotIntervalMinutes}-minute grid of the teacher's "
                f"time zone ({self.tz.key})."
            )
        end = start + timedelta(minutes=duration_minutes)
        if not fits(start, end, self.windows, self.tz):
            return (
                "The teacher is not available for the whole session at that time "
                f"(availability is read in {self.tz.key})."
            )
        return None
