"""The session lifecycle table, cell by cell, and its time guards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform.errors import AppError, ErrorCode
from app.tutoring.billing import create_entitlement
from app.tutoring.entity_types import SESSION_STATUSES
from app.tutoring.scheduling.booking import reschedule_session
from app.tutoring.scheduling.lifecycle import TRANSITIONS
from app.tutoring.scheduling.payments import record_payment_succeeded
from app.tutoring.scheduling.retry import retry_session_payment
from app.tutoring.scheduling.transitions import (
    cancel_session,
    complete_session,
    lapse_hold,
    mark_no_show,
    start_session,
)
from app.tutoring.settings import update_settings
from tests.booking_world import at, book
from tests.booking_world import code_of as _code
from tests.world import NOW

ROLES = ("system", "admin", "teacher", "guardian")
START = at(2)  # Wednesday 12:00 Berlin


async def _as(w, role):
    return await w.system() if role == "system" else await w.as_role(role)


async def _session(w, status: str) -> str:
    """A session of T1/S1/G1 at START in ``status``, made through the real operations."""
    admin = await w.as_role("admin")
    if status == "pending_payment":
        return (await book(admin, w, START)).id
    entitlement = await create_entitlement(
        admin, {"guardianId": w.ids["G1"], "studentId": w.ids["S1"], "totalCredits": 5}
    )
    session = await book(admin, w, START, entitlement=entitlement.id)
    return session.id


async def _do(action, entities, session_id, w):
    """Runs ``action`` through the operation a transport would call."""
    if action == "confirm_payment":
        system = await w.system()
        payment_id = (await system.get("session", session_id)).get("paymentId")
        return await record_payment_succeeded(entities, payment_id, "ref")
    if action == "cancel":
        return await cancel_session(entities, session_id, "because")
    if action == "lapse":
        return await lapse_hold(entities, session_id)
    if action == "retry_payment":
        return await retry_session_payment(entities, session_id)
    if action == "reschedule":
        return await reschedule_session(entities, session_id, START + timedelta(hours=2))
    if action == "start":
        return await start_session(entities, session_id)
    if action == "no_show":
        return await mark_no_show(entities, session_id)
    if action == "complete":
        return await complete_session(entities, session_id, "Report.")
    raise AssertionError(action)


def _time_for(action: str, role: str):
    """A moment at which the transition's guard lets ``role`` through."""
    return {
        "start": START,
        "no_show": START + timedelta(minutes=20),
        "complete": START + timedelta(minutes=30),
        "lapse": START - timedelta(hours=20),
        "retry_payment": NOW + timedelta(minutes=10),  # within the hold of a booking at NOW
    }.get(action, START - timedelta(hours=24))


CELLS = [(t, role) for t in TRANSITIONS for role in ROLES]


@pytest.mark.parametrize(
    ("transition", "role"), CELLS, ids=[f"{t.action}:{t.source}->{t.target}:{r}" for t, r in CELLS]
)
async def test_lifecycle_cell(w, clock, transition, role):
    session_id = await _session(w, transition.source)
    admin = await w.as_role("admin")
    if transition.action == "complete":
        clock.now = START
        await start_session(admin, session_id)
    if transition.action == "start" and role == "system":
        await update_settings(admin, {"autoStartSessions": True})
    clock.now = _time_for(transition.action, role)
    entities = await _as(w, role)
    if role in transition.roles:
        await _do(transition.action, entities, session_id, w)
        after = await (await w.system()).get("session", session_id)
        assert after.get("status") == transition.target
    else:
        with pytest.raises(AppError) as err:
            await _do(transition.action, entities, session_id, w)
        assert err.value.code is ErrorCode.FORBIDDEN, err.value.message
        unchanged = await (await w.system()).get("session", session_id)
        assert unchanged.get("status") == transition.source


ACTIONS = ("cancel", "reschedule", "start", "no_show", "complete", "retry_payment")
MISSING = [
    (status, action)
    for status in SESSION_STATUSES
    for action in ACTIONS
    if not any(t.source == status and t.action == action for t in TRANSITIONS)
]


@pytest.mark.parametrize(("status", "action"), MISSING)
async def test_transitions_outside_the_table_are_invalid(w, clock, status, action):
    system = await w.system()
    session = await system.create(
        "session",
        {},
        server_fields={
            "teacherId": w.ids["T1"], "studentId": w.ids["S1"], "guardianId": w.ids["G1"],
            "startTime": START, "duration": 60, "status": status,
        },
    )  # fmt: skip
    clock.now = START + timedelta(minutes=30)
    with pytest.raises(AppError) as err:
        await _do(action, await w.as_role("admin"), session.id, w)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert (await system.get("session", session.id)).get("status") == status


# -- the guards ------------------------------------------------------------------------------


async def test_guardian_cancel_cutoff(w, clock):
    session_id = await _session(w, "scheduled")
    g1 = await w.as_role("guardian")
    clock.now = START - timedelta(minutes=119)  # default cutoff: the reschedule cutoff, 2 h
    assert await _code(cancel_session(g1, session_id)) == "SCHEDULING_RULE"
    await update_settings(await w.as_role("admin"), {"guardianCancelCutoffMinutes": 60})
    g1 = await w.as_role("guardian")  # the guardian's next request sees the new setting
    await cancel_session(g1, session_id, "sick")


async def test_admin_cancels_regardless_of_cutoff(w, clock):
    session_id = await _session(w, "scheduled")
    clock.now = START - timedelta(minutes=5)
    cancelled = await cancel_session(await w.as_role("admin"), session_id)
    assert cancelled.get("status") == "cancelled"


async def test_reschedule_cutoff_and_limit(w, clock):
    session_id = await _session(w, "scheduled")
    g1 = await w.as_role("guardian")
    clock.now = START - timedelta(hours=30)
    moved = await reschedule_session(g1, session_id, START + timedelta(hours=1))
    assert moved.get("rescheduleCount") == 1
    moved = await reschedule_session(g1, session_id, START + timedelta(hours=2))
    assert moved.get("rescheduleCount") == 2
    with pytest.raises(AppError) as err:
        await reschedule_session(g1, session_id, START)
    assert err.value.code is ErrorCode.SCHEDULING_RULE and "at most 2" in err.value.message
    admin = await w.as_role("admin")
    assert (await reschedule_session(admin, session_id, START)).get("rescheduleCount") == 3
    other = await _session_at(w, START + timedelta(hours=4))
    clock.now = START + timedelta(hours=4) - timedelta(minutes=90)
    assert (
        await _code(reschedule_session(g1, other, START + timedelta(hours=5))) == "SCHEDULING_RULE"
    )


async def _session_at(w, start):
    admin = await w.as_role("admin")
    entitlement = await create_entitlement(
        admin, {"guardianId": w.ids["G1"], "studentId": w.ids["S1"], "totalCredits": 5}
    )
    return (await book(admin, w, start, entitlement=entitlement.id)).id


async def test_reschedule_moves_the_slot(w, clock):
    session_id = await _session(w, "scheduled")
    admin = await w.as_role("admin")
    await reschedule_session(admin, session_id, START + timedelta(hours=2))
    # The old time is free again, the new one taken.
    freed = await book(admin, w, START, student="S2")
    assert freed.get("status") == "pending_payment"
    assert await _code(book(admin, w, START + timedelta(hours=2), student="S3")) == "CONFLICT"


async def test_reschedule_obeys_the_booking_rules(w, clock):
    session_id = await _session(w, "scheduled")
    g1 = await w.as_role("guardian")
    assert await _code(reschedule_session(g1, session_id, at(9))) == "SCHEDULING_RULE"  # 19:00
    await book(await w.as_role("admin"), w, START + timedelta(hours=3), student="S2")
    assert await _code(reschedule_session(g1, session_id, START + timedelta(hours=3))) == "CONFLICT"


async def test_teacher_start_window_and_no_show_grace(w, clock):
    session_id = await _session(w, "scheduled")
    t1 = await w.as_role("teacher")
    clock.now = START - timedelta(minutes=11)
    assert await _code(start_session(t1, session_id)) == "SCHEDULING_RULE"
    clock.now = START + timedelta(minutes=14)
    assert await _code(mark_no_show(t1, session_id)) == "SCHEDULING_RULE"
    clock.now = START + timedelta(minutes=15)
    assert (await mark_no_show(t1, session_id)).get("status") == "no_show"


async def test_completion_requires_the_report(w, clock):
    session_id = await _session(w, "scheduled")
    t1 = await w.as_role("teacher")
    clock.now = START
    await start_session(t1, session_id)
    assert await _code(complete_session(t1, session_id, "  ")) == "BAD_USER_INPUT"
    done = await complete_session(t1, session_id, "Covered chapter 3.")
    assert done.get("reportContent") == "Covered chapter 3." and done.get("reportSubmitted") is True


async def test_teachers_act_only_on_their_own_sessions(w, clock):
    session_id = await _session(w, "scheduled")
    clock.now = START
    t2 = await w.as_user("u-t2", "teacher")
    assert await _code(start_session(t2, session_id)) == "NOT_FOUND"
