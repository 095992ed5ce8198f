"""Helpers for scheduling tests on top of ``tests.world``.

The clock starts at NOW = Monday 2026-11-02 12:00 UTC. T1 and T2 teach Monday to Friday,
09:00-17:00 Europe/Berlin (UTC+1 in November), so Wednesday 2026-11-04 10:00 Berlin is
09:00 UTC, 45 hours ahead: bookable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.tutoring.billing import create_entitlement
from app.tutoring.scheduling.booking import BookingRequest, book_session

WEEKDAYS = [{"dayOfWeek": d, "startHour": 9, "endHour": 17} for d in range(1, 6)]
WED_10_BERLIN = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


def at(hours: float = 0, base: datetime = WED_10_BERLIN) -> datetime:
    """``base`` shifted by ``hours`` (Wednesday 10:00 Berlin by default)."""
    return base + timedelta(hours=hours)


async def prepare(world) -> None:
    system = await world.system()
    for teacher in ("T1", "T2"):
        await system.update(
            "teacher", world.ids[teacher], {"availability": WEEKDAYS, "timezone": "Europe/Berlin"}
        )


async def pack(world, credits: int = 4, student: str = "S1", guardian: str = "G1", **extra) -> str:
    admin = await world.as_role("admin")
    data = {
        "guardianId": world.ids[guardian],
        "studentId": world.ids[student],
        "totalCredits": credits,
        **extra,
    }
    return (await create_entitlement(admin, data)).id


async def book(entities, world, start, *, teacher="T1", student="S1", minutes=60, entitlement=None):
    return await book_session(
        entities,
        BookingRequest(
            teacher_id=world.ids[teacher],
            student_id=world.ids[student],
            start=start,
            duration_minutes=minutes,
            subject="math",
            entitlement_id=entitlement,
        ),
    )


async def code_of(call) -> str:
    """The contract code of the error ``call`` raises (it must raise one)."""
    from app.platform.errors import AppError

    try:
        await call
    except AppError as exc:
        return str(exc.code)
    raise AssertionError("expected an error")
