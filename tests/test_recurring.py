"""Recurring sessions go through the same booking rule; failing weeks are skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.scheduling.recurring import book_recurring
from tests.booking_world import book, pack


async def test_books_the_weekly_slot_and_reports_skipped_weeks(w):
    admin = await w.as_role("admin")
    entitlement = await pack(
        w,
        credits=3,
        preferredTeacherId=w.ids["T1"],
        subject="math",
        recurringSchedule={"dayOfWeek": 3, "hour": 10, "minute": 0},
    )
    # Week 2's slot is taken (Wednesday 2026-11-11 10:00 Berlin = 09:00 UTC).
    await book(admin, w, datetime(2026, 11, 11, 9, 0, tzinfo=UTC), student="S2")
    result = await book_recurring(admin, entitlement, weeks=5)
    starts = [s.get("startTime") for s in result.booked]
    assert starts == [
        datetime(2026, 11, 4, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
    ]
    assert [(s.start.astimezone(UTC), s.code) for s in result.skipped] == [
        (datetime(2026, 11, 11, 9, 0, tzinfo=UTC), "CONFLICT"),
        (datetime(2026, 12, 2, 9, 0, tzinfo=UTC), "INSUFFICIENT_CREDITS"),
    ]
    assert all(s.get("entitlementId") == entitlement for s in result.booked)


async def test_needs_a_schedule_and_a_teacher(w):
    admin = await w.as_role("admin")
    entitlement = await pack(w)
    with pytest.raises(AppError) as err:
        await book_recurring(admin, entitlement, weeks=2)
    assert err.value.code is ErrorCode.BAD_USER_INPUT
