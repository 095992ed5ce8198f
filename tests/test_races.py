"""Concurrency: the store yields between every operation (as a network round trip would), so
these tasks interleave wherever a check-then-write race could hide."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.platform.errors import AppError, ErrorCode
from app.tutoring.billing import create_entitlement
from app.tutoring.scheduling.transitions import complete_session, start_session
from tests.booking_world import at, book

START = at(2)


async def _students(w, n):
    system = await w.system()
    return [
        (await system.create("student", {"name": f"R{i}", "guardianId": w.ids["G1"]})).id
        for i in range(n)
    ]


async def test_20_concurrent_overlapping_bookings_make_one_session(w):
    admin = await w.as_role("admin")
    students = await _students(w, 20)
    w.ids.update({f"R{i}": s for i, s in enumerate(students)})
    starts = [START + timedelta(minutes=15 * (i % 4)) for i in range(20)]  # all overlap
    results = await asyncio.gather(
        *(book(admin, w, starts[i], student=f"R{i}") for i in range(20)), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(e, AppError) and e.code is ErrorCode.CONFLICT for e in lost), lost
    sessions = await admin.query("session", where={"studentId": {"in": students}})
    assert [s.id for s in sessions.items] == [won[0].id]


async def test_20_concurrent_bookings_of_one_student_with_different_teachers(w):
    admin = await w.as_role("admin")
    system = await w.system()
    teachers = []
    for i in range(20):
        t = await system.create(
            "teacher",
            {"name": f"Q{i}", "email": f"q{i}@example.com", "timezone": "Europe/Berlin",
             "availability": [{"dayOfWeek": 3, "startHour": 9, "endHour": 17}]},
        )  # fmt: skip
        w.ids[f"Q{i}"] = t.id
        teachers.append(f"Q{i}")
    results = await asyncio.gather(
        *(book(admin, w, START, teacher=t) for t in teachers), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_10_concurrent_completions_of_one_session_deduct_one_credit(w, clock):
    admin = await w.as_role("admin")
    pack = await create_entitlement(
        admin, {"guardianId": w.ids["G1"], "studentId": w.ids["S1"], "totalCredits": 4}
    )
    session = await book(admin, w, START, entitlement=pack.id)
    clock.now = START
    t1 = await w.as_role("teacher")
    await start_session(t1, session.id)
    results = await asyncio.gather(
        *(complete_session(t1, session.id, f"report {i}") for i in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(
        r.code is ErrorCode.INVALID_TRANSITION for r in results if isinstance(r, BaseException)
    )
    after = await admin.get("entitlement", pack.id)
    assert (after.get("remainingCredits"), after.get("usedCredits")) == (3, 1)


async def test_10_completions_on_a_4_credit_pack_deduct_4_and_exhaust_it(w, clock):
    admin = await w.as_role("admin")
    system = await w.system()
    pack = await create_entitlement(
        admin, {"guardianId": w.ids["G1"], "studentId": w.ids["S1"], "totalCredits": 4}
    )
    # Ten sessions already running against the pack (made directly: booking would have
    # stopped at four reservations).
    sessions = [
        (
            await system.create(
                "session",
                {},
                server_fields={
                    "teacherId": w.ids["T1"],
                    "studentId": w.ids["S1"],
                    "guardianId": w.ids["G1"],
                    "startTime": START + timedelta(hours=i),
                    "duration": 30,
                    "status": "in_progress",
                    "entitlementId": pack.id,
                },
            )
        ).id
        for i in range(10)
    ]
    clock.now = START
    results = await asyncio.gather(
        *(complete_session(admin, s, "done") for s in sessions), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 6
    assert all(e.code is ErrorCode.INSUFFICIENT_CREDITS for e in errors)
    after = await admin.get("entitlement", pack.id)
    assert (after.get("remainingCredits"), after.get("usedCredits"), after.get("status")) == (
        0,
        4,
        "exhausted",
    )
    statuses = [(await admin.get("session", s)).get("status") for s in sessions]
    assert statuses.count("completed") == 4 and statuses.count("in_progress") == 6
