"""Claims kept in weekly buckets behave as one calendar: across a week's end a claim clashes,
holds, expires and is released like any other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.platform.calendar import CALENDAR_INDEXES, ResourceCalendar, buckets
from app.platform.errors import Conflict

SUNDAY_NIGHT = datetime(2027, 1, 10, 23, 30, tzinfo=UTC)  # ISO week 1 ends at midnight
HOUR = timedelta(hours=1)


@pytest.fixture
async def calendar(store, clock):
    await store.ensure_indexes(CALENDAR_INDEXES)
    return ResourceCalendar(store, clock=clock)


def test_buckets_are_the_weeks_a_span_touches():
    assert buckets(SUNDAY_NIGHT, SUNDAY_NIGHT + HOUR) == ["2027-W01", "2027-W02"]
    assert buckets(SUNDAY_NIGHT - HOUR, SUNDAY_NIGHT) == ["2027-W01"]
    assert buckets(SUNDAY_NIGHT, SUNDAY_NIGHT + timedelta(minutes=30)) == ["2027-W01"]


async def test_a_claim_across_midnight_on_sunday_clashes_in_both_weeks(calendar):
    claim = await calendar.claim(
        "o", "teacher:t", owner="s1", start=SUNDAY_NIGHT, end=SUNDAY_NIGHT + HOUR
    )
    monday = SUNDAY_NIGHT + timedelta(minutes=45)
    with pytest.raises(Conflict):  # overlaps only in the second week
        await calendar.claim("o", "teacher:t", owner="s2", start=monday, end=monday + HOUR)
    evening = SUNDAY_NIGHT - 2 * HOUR  # 21:30-22:30, all in the first week
    await calendar.claim("o", "teacher:u", owner="e", start=evening, end=evening + HOUR)
    with pytest.raises(Conflict):  # a Monday claim whose buffer reaches back into Sunday
        await calendar.claim(
            "o", "teacher:u", owner="m", start=monday, end=monday + HOUR,
            padding=timedelta(hours=2),
        )  # fmt: skip
    busy = await calendar.busy("o", ["teacher:t"], SUNDAY_NIGHT - HOUR, SUNDAY_NIGHT + 3 * HOUR)
    assert [b.claim_id for b in busy] == [claim]  # one interval, though stored twice
    await calendar.release("o", "teacher:t", claim_id=claim)
    assert await calendar.busy("o", ["teacher:t"], SUNDAY_NIGHT, SUNDAY_NIGHT + HOUR) == []
    await calendar.claim("o", "teacher:t", owner="s2", start=monday, end=monday + HOUR)


async def test_racing_claims_across_a_weeks_end_leave_exactly_one(calendar):
    starts = [SUNDAY_NIGHT - timedelta(minutes=15 * k) for k in range(4)]
    starts += [SUNDAY_NIGHT + timedelta(minutes=15 * k) for k in range(1, 5)]
    results = await asyncio.gather(
        *(
            calendar.claim("o", "teacher:t", owner=f"s{i}", start=s, end=s + HOUR)
            for i, s in enumerate(starts * 3)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, str)]
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, str))
    busy = await calendar.busy("o", ["teacher:t"], SUNDAY_NIGHT - 2 * HOUR, SUNDAY_NIGHT + 3 * HOUR)
    assert len(winners) == len(busy)
    for a in busy:  # whoever won, no two winners overlap
        assert not any(b is not a and a.overlaps(b.start, b.end) for b in busy)


async def test_holds_expire_and_are_confirmed_in_every_week(calendar, clock):
    hold = clock.now + timedelta(minutes=30)
    claim = await calendar.claim(
        "o", "student:s", owner="x", start=SUNDAY_NIGHT, end=SUNDAY_NIGHT + HOUR, expires_at=hold
    )
    assert await calendar.set_expiry("o", "student:s", claim, None)  # confirmed: no expiry
    clock.advance(hours=1)
    busy = await calendar.busy("o", ["student:s"], SUNDAY_NIGHT, SUNDAY_NIGHT + HOUR)
    assert [b.claim_id for b in busy] == [claim]
    assert [i.claim_id for i in await calendar.claims_of("o", "student:s", "x")] == [claim]
