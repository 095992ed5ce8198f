"""Times in a time zone the client names.

Every ``DateTime`` field stays in UTC (it is read on every page, and clients compare and
store instants). Next to each one, an argument-taking sibling (``localStartTime(tz:)``)
gives the same instant on the clocks of ``tz``, with the offset that zone had at that
moment, so a daylight-saving change shows as a different offset, never a wrong hour. The
sibling costs nothing unless selected. Annotations are evaluated eagerly here (no ``from
__future__``): the resolvers are built by a factory.
"""

import datetime as dt
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry

from app.platform.inputs import time_zone


@strawberry.type(description="An instant as read on the clocks of a time zone.")
class LocalDateTime:
    dateTime: datetime = strawberry.field(
        description="ISO 8601 with the zone's offset at that instant, e.g. "
        "2026-03-29T10:00:00+02:00"
    )
    timeZone: str = strawberry.field(description="The IANA name asked for")
    offsetMinutes: int = strawberry.field(description="The zone's offset from UTC then")
    date: dt.date = strawberry.field(description="The local calendar date")
    time: dt.time = strawberry.field(description="The local wall-clock time")
    dayOfWeek: int = strawberry.field(description="0 = Sunday ... 6 = Saturday, local")


def in_zone(when: datetime, tz: str) -> LocalDateTime:
    """``when`` (stored in UTC) on the clocks of ``tz``; ``BAD_USER_INPUT`` naming ``tz``
    when it is not a known zone."""
    zone = time_zone(tz)
    if when.tzinfo is None:  # stored times are UTC; a naive one read back means UTC
        when = when.replace(tzinfo=UTC)
    local = when.astimezone(zone)
    offset = local.utcoffset()
    return LocalDateTime(
        dateTime=local,
        timeZone=zone.key,
        offsetMinutes=int(offset.total_seconds() // 60) if offset is not None else 0,
        date=local.date(),
        time=local.timetz().replace(tzinfo=None),
        dayOfWeek=(local.weekday() + 1) % 7,
    )


TZ_ARGUMENT = strawberry.argument(description="An IANA time zone name, e.g. Europe/Berlin")


def local(name: str) -> Any:
    """The sibling of the ``DateTime`` attribute ``name``: null when that is null (unset, or
    hidden by the caller's masks), else the instant in ``tz``. An unknown ``tz`` is
    ``BAD_USER_INPUT`` even where the time is null, so a client learns of it on any row."""

    def resolve(root: Any, tz: Annotated[str, TZ_ARGUMENT]) -> LocalDateTime | None:
        when = getattr(root, name, None)
        if when is None:
            time_zone(tz)
            return None
        return in_zone(when, tz)

    return strawberry.field(
        resolver=resolve, description=f"{name} in the time zone tz (see LocalDateTime)"
    )
