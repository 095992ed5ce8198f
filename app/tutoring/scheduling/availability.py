"""Teacher availability, read in the teacher's time zone to the minute.

Windows are weekly wall-clock intervals (``dayOfWeek`` 0 = Sunday). A session fits when its
real start and end instants both lie inside one window of the local day it starts on, so a
session across a daylight-saving change is measured in real minutes while the window keeps its
wall-clock meaning. ``endHour`` 24 is midnight at the end of the day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Window = Mapping[str, Any]


def weekday(day: date) -> int:
    """0 = Sunday ... 6 = Saturday, as the spec numbers days."""
    return (day.weekday() + 1) % 7


def window_bounds(day: date, window: Window, tz: ZoneInfo) -> tuple[datetime, datetime]:
    midnight = datetime.combine(day, time(0), tzinfo=tz)
    start = midnight + timedelta(hours=window["startHour"], minutes=window.get("startMinute", 0))
    end = midnight + timedelta(hours=window["endHour"], minutes=window.get("endMinute", 0))
    # Wall-clock arithmetic above; the instants come from the zone's offset at those times.
    return start.astimezone(UTC), end.astimezone(UTC)


def fits(start: datetime, end: datetime, windows: Sequence[Window], tz: ZoneInfo) -> bool:
    day = start.astimezone(tz).date()
    for window in windows:
        if window["dayOfWeek"] != weekday(day):
            continue
        w_start, w_end = window_bounds(day, window, tz)
        if w_start <= start and end <= w_end:
            return True
    return False


def on_grid(start: datetime, tz: ZoneInfo, interval_minutes: int) -> bool:
    local = start.astimezone(tz)
    return (
        local.second == 0
        and local.microsecond == 0
        and ((local.hour * 60 + local.minute) % interval_minutes == 0)
    )


def grid_points(
    start: datetime, end: datetime, tz: ZoneInfo, interval_minutes: int
) -> Iterator[datetime]:
    """Every slot-grid instant in [start, end], in time order. Steps through real time (by
    the interval's common divisor with 15 minutes, since zone offsets are multiples of 15) and
    keeps the instants on the local grid, so a repeated autumn hour is offered twice and a
    skipped spring hour not at all, exactly as ``on_grid`` judges a booking."""
    step = timedelta(minutes=math.gcd(interval_minutes, 15))
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    t = epoch + -((epoch - start) // step) * step  # first step boundary at or after start
    while t <= end:
        if on_grid(t, tz, interval_minutes):
            yield t
        t += step
