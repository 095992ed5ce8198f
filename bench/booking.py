"""availableSlots over 28 days for a teacher with 1,000 sessions, and booking latency alone
and under 20-way contention, on the in-memory store.

    .venv/bin/python bench/booking.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from app.config import Settings
from app.platform.actor import Actor
from app.platform.auth import Identity
from app.platform.errors import Conflict
from app.runtime import build_runtime
from app.tutoring.scheduling.booking import BookingRequest, available_slots, book_session
from tests.world import build_world

ALL_WEEK = [{"dayOfWeek": d, "startHour": 0, "endHour": 24} for d in range(7)]
NOW = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def summary(samples: list[float]) -> str:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    return f"median {ms(statistics.median(samples))} ms, p95 {ms(p95)} ms, n={len(samples)}"


async def main() -> None:
    runtime = await build_runtime(Settings(), clock=lambda: NOW)
    world = await build_world(runtime.entities, "bench")
    system = await runtime.entities.for_actor(Actor.system("bench", "bench"))
    await system.update("teacher", world.ids["T1"], {"availability": ALL_WEEK, "timezone": "UTC"})
    students = [
        (await system.create("student", {"name": f"B{i}", "guardianId": world.ids["G1"]})).id
        for i in range(40)
    ]

    def request(start: datetime, student: str) -> BookingRequest:
        return BookingRequest(world.ids["T1"], student, start, 60, "math", None)

    first = NOW + timedelta(days=2)
    t0 = time.perf_counter()
    for i in range(1000):  # 60 minutes + 15 buffer, one every 3 hours: 8 a day, 125 days
        await book_session(system, request(first + timedelta(minutes=180 * i), students[i % 40]))
    print(f"seeded 1,000 bookings in {time.perf_counter() - t0:.1f} s")

    identity = Identity("u-admin", "bench", frozenset({"admin"}))
    admin = await runtime.entities.for_actor(await runtime.actors.resolve(identity))
    samples = []
    for _ in range(10):
        t = time.perf_counter()
        slots = await available_slots(admin, world.ids["T1"], first, first + timedelta(days=28), 60)
        samples.append(time.perf_counter() - t)
    print(f"availableSlots, 28 days, 1,000 sessions ({len(slots)} free slots): {summary(samples)}")

    later = first + timedelta(days=130)
    alone = []
    for i in range(50):
        t = time.perf_counter()
        await book_session(admin, request(later + timedelta(minutes=180 * i), students[i % 40]))
        alone.append(time.perf_counter() - t)
    print(f"bookSession alone: {summary(alone)}")

    contended, wins = [], 0
    base = later + timedelta(days=30)
    for round_ in range(10):
        start = base + timedelta(hours=3 * round_)

        async def attempt(student: str, start: datetime = start) -> float:
            t = time.perf_counter()
            try:
                await book_session(admin, request(start, student))
            except Conflict:
                pass
            return time.perf_counter() - t

        times = await asyncio.gather(*(attempt(students[k]) for k in range(20)))
        contended.extend(times)
        found = await admin.count(
            "session", where={"startTime": start, "teacherId": world.ids["T1"]}
        )
        wins += found
    print(
        f"bookSession, 20-way contention on one slot (10 rounds): {summary(contended)}; "
        f"sessions created: {wins} (one per round)"
    )


if __name__ == "__main__":
    asyncio.run(main())
