"""Workflow jobs against a real Redis: scheduled at the right time, run by the arq worker,
idempotent, and surviving worker stops and Redis flushes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from arq.constants import default_queue_name
from arq.utils import timestamp_ms

from app.platform.jobs import JobStatus, Outcome, Transient, retries_of
from app.platform.outbox import Outbox
from app.platform.queue import job_id
from app.tutoring.jobs.handlers import handlers
from app.tutoring.scheduling.booking import reschedule_session
from app.tutoring.scheduling.transitions import cancel_session, complete_session, start_session
from tests.booking_world import at, book, pack
from workers.settings import worker_for

START = at(2)  # Wednesday 12:00 Berlin
REMIND = START - timedelta(hours=20)


async def _make_due(runtime) -> None:
    """The tests move the service's clock; Redis deferrals are in real time. Jobs due on the
    service's clock are made due in the queue too (their score in arq's queue set), as the
    passing of time would have."""
    now = runtime.entities.clock()
    jobs = runtime.store.collection("jobs")
    for org in await jobs.organizations({}):
        due = {"status": {"$in": ["pending", "queued"]}, "runAt": {"$lte": now}}
        for job in await jobs.find(org, due):
            member = {job_id(org, job["key"], retries_of(job)): timestamp_ms()}
            await runtime.redis.zadd(default_queue_name, member, xx=True)


async def _stop(worker, task) -> None:
    """Stops a worker the hard way: its loop and its running jobs are cancelled."""
    running = list(worker.tasks.values())
    task.cancel()
    for job in running:
        job.cancel()
    await asyncio.gather(task, *running, return_exceptions=True)


async def _drain(runtime, handlers_override=None) -> None:
    """Runs every job that is due, as the worker does, then stops."""
    await _make_due(runtime)
    worker = worker_for(runtime, poll_delay=0.02, handle_signals=False)
    if handlers_override:
        worker.ctx["handlers"] = handlers_override
    task = asyncio.create_task(worker.async_run())
    idle = 0
    for _ in range(500):  # until nothing due is left and nothing runs, three checks in a row
        await asyncio.sleep(0.03)
        due = await runtime.redis.zcount(default_queue_name, 0, timestamp_ms())
        idle = idle + 1 if due == 0 and not worker.tasks else 0
        if idle >= 3:
            break
    await _stop(worker, task)


async def _messages(runtime, org, **filter):
    messages = await Outbox(runtime.store).list(org)
    return [m for m in messages if all(m.get(k) == v for k, v in filter.items())]


async def _jobs(runtime, w, ref):
    admin = await w.as_role("admin")
    return await runtime.entities.jobs.for_refs(admin, [ref])


async def test_booking_schedules_reminders_at_the_right_time(w, queued):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    jobs = await _jobs(queued, w, session.id)
    reminders = [j for j in jobs if j["type"] == "session.reminder"]
    assert sorted(j["payload"]["recipient"] for j in reminders) == ["guardian", "teacher"]
    assert all(j["runAt"] == REMIND and j["status"] == "queued" for j in reminders)
    no_show = next(j for j in jobs if j["type"] == "session.no_show_check")
    assert no_show["runAt"] == START + timedelta(minutes=15)


async def test_reminders_are_written_when_due_and_only_then(w, queued, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    await _drain(queued)  # not due yet: re-deferred, nothing written
    assert await _messages(queued, w.org) == []
    clock.now = REMIND
    await _drain(queued)
    written = await _messages(queued, w.org, template="session_reminder")
    assert sorted(m["recipientType"] for m in written) == ["guardian", "teacher"]
    assert {m["variables"]["sessionId"] for m in written} == {session.id}


async def test_a_cancelled_session_gets_no_reminder(w, queued, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    await cancel_session(admin, session.id, "sick")
    clock.now = REMIND
    await _drain(queued)
    assert await _messages(queued, w.org) == []
    statuses = {
        j["status"] for j in await _jobs(queued, w, session.id) if j["type"] == "session.reminder"
    }
    assert statuses == {"skipped"}


async def test_reschedule_moves_the_reminder_and_the_old_one_writes_nothing(w, queued, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    new_start = START + timedelta(hours=3)
    await reschedule_session(admin, session.id, new_start)
    clock.now = new_start - timedelta(hours=20)
    await _drain(queued)
    written = await _messages(queued, w.org, template="session_reminder")
    assert len(written) == 2
    assert {m["variables"]["startTime"] for m in written} == {new_start.isoformat()}
    old = [
        j for j in await _jobs(queued, w, session.id)
        if j["type"] == "session.reminder" and j["payload"]["startTime"] == START.isoformat()
    ]  # fmt: skip
    assert len(old) == 2 and {j["status"] for j in old} == {"skipped"}


async def test_running_the_same_job_twice_writes_one_message(w, queued, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    clock.now = REMIND
    job = next(j for j in await _jobs(queued, w, session.id) if j["type"] == "session.reminder")
    jobs, table = queued.entities.jobs, handlers(queued.entities)
    assert await jobs.run(w.org, job["key"], table) is JobStatus.DONE
    assert await jobs.run(w.org, job["key"], table) is JobStatus.DONE  # finished: not run again
    # Even a second execution of the handler itself (at-least-once delivery) writes nothing.
    await queued.store.collection("jobs").update_one(
        w.org, {"key": job["key"]}, {"$set": {"status": "queued"}}
    )
    assert await jobs.run(w.org, job["key"], table) is JobStatus.SKIPPED
    assert len(await _messages(queued, w.org, idempotencyKey=job["key"])) == 1


async def test_a_worker_stopped_mid_job_delivers_once_after_restart(w, queued, clock):
    admin = await w.as_role("admin")
    await book(admin, w, START, entitlement=await pack(w))
    clock.now = REMIND
    written, hang = asyncio.Event(), asyncio.Event()
    worker = worker_for(queued, poll_delay=0.02, max_jobs=1, handle_signals=False)
    real = worker.ctx["handlers"]["session.reminder"]

    async def write_then_hang(actor, payload, key):
        outcome = await real(actor, payload, key)
        written.set()
        await hang.wait()  # the process dies here, before the job is marked done
        return outcome

    worker.ctx["handlers"] = {**worker.ctx["handlers"], "session.reminder": write_then_hang}
    await _make_due(queued)
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(written.wait(), 10)
    await _stop(worker, task)  # killed mid-job: the job was never marked done
    assert len(await _messages(queued, w.org, template="session_reminder")) == 1
    await queued.entities.jobs.reconcile()  # a restarted deployment reconciles first
    await _drain(queued)
    written_now = await _messages(queued, w.org, template="session_reminder")
    assert len(written_now) == 2  # guardian and teacher, each once
    reminder_jobs = [
        j
        for j in await _jobs(queued, w, written_now[0]["variables"]["sessionId"])
        if j["type"] == "session.reminder"
    ]
    assert {j["status"] for j in reminder_jobs} <= {"done", "skipped"}


async def test_a_redis_flush_then_reconcile_still_delivers_once(w, queued, clock):
    admin = await w.as_role("admin")
    session = await book(admin, w, START, entitlement=await pack(w))
    await queued.redis.flushall()  # every queued job is gone from Redis
    reminders = [j for j in await _jobs(queued, w, session.id) if j["type"] == "session.reminder"]
    assert not any([await queued.entities.jobs.queue.knows(w.org, j["key"]) for j in reminders])
    clock.now = REMIND
    await _drain(queued)  # the worker reconciles when it starts (and every minute)
    await queued.entities.jobs.reconcile()  # and again: nothing open is lost, nothing doubled
    await _drain(queued)
    written = await _messages(queued, w.org, template="session_reminder")
    assert len(written) == 2 and {m["variables"]["sessionId"] for m in written} == {session.id}


async def test_expiry_warnings_fire_at_the_right_days_and_not_for_exhausted_packs(w, queued, clock):
    expires = at(24 * 30)
    live = await pack(w, credits=3, expiresAt=expires)
    used_up = await pack(w, credits=1, expiresAt=expires, student="S3")
    warnings = [
        j for j in await _jobs(queued, w, live) if j["type"] == "entitlement.expiry_warning"
    ]
    assert sorted(j["runAt"] for j in warnings) == [
        expires - timedelta(days=7),
        expires - timedelta(days=1),
    ]
    admin = await w.as_role("admin")
    session = await book(admin, w, START, student="S3", entitlement=used_up)
    clock.now = START
    await start_session(admin, session.id)
    await complete_session(admin, session.id, "done")  # the last credit: exhausted
    clock.now = expires - timedelta(days=7)
    await _drain(queued)
    sent = await _messages(queued, w.org, template="pack_expiring")
    assert [(m["variables"]["entitlementId"], m["variables"]["daysRemaining"]) for m in sent] == [
        (live, 7)
    ]
    clock.now = expires - timedelta(days=1)
    await _drain(queued)
    sent = await _messages(queued, w.org, template="pack_expiring")
    assert [m["variables"]["daysRemaining"] for m in sent] == [7, 1]
    clock.now = expires
    await _drain(queued)
    assert (await admin.get("entitlement", live)).get("status") == "expired"
    assert (await admin.get("entitlement", used_up)).get("status") == "exhausted"


async def test_followups_prompt_to_buy_or_renew(w, queued, clock):
    admin = await w.as_role("admin")
    trial = await book(admin, w, START)  # no pack: pay first
    from app.tutoring.scheduling.payments import record_payment_succeeded

    await record_payment_succeeded(admin, trial.get("paymentId"))
    last_credit = await book(
        admin, w, START + timedelta(hours=2), entitlement=await pack(w, credits=1)
    )
    clock.now = START + timedelta(hours=2)
    for session in (trial, last_credit):
        await start_session(admin, session.id)
        await complete_session(admin, session.id, "ok")
    await _drain(queued)
    templates = sorted(
        m["template"] for m in await _messages(queued, w.org) if m["template"] != "session_reminder"
    )
    assert templates == ["pack_followup_renew", "trial_followup_buy_pack"]


async def test_unstarted_sessions_become_no_shows_and_lapsed_holds_free_their_slot(
    w, queued, clock
):
    admin = await w.as_role("admin")
    g1 = await w.as_role("guardian")
    missed = await book(admin, w, START, entitlement=await pack(w))
    unpaid = await book(g1, w, START + timedelta(hours=3))
    clock.now = START + timedelta(minutes=16)
    await _drain(queued)
    assert (await admin.get("session", missed.id)).get("status") == "no_show"
    assert (await admin.get("session", unpaid.id)).get("status") == "cancelled"  # hold lapsed
    again = await book(admin, w, START + timedelta(days=1, hours=3), student="S2")
    assert again is not None


async def test_auto_start_mode_starts_sessions_at_their_time(w, queued, clock):
    from app.tutoring.settings import update_settings

    admin = await w.as_role("admin")
    await update_settings(admin, {"autoStartSessions": True})
    session = await book(admin, w, START, entitlement=await pack(w))
    clock.now = START
    await _drain(queued)
    assert (await admin.get("session", session.id)).get("status") == "in_progress"


async def test_transient_failures_retry_and_permanent_ones_fail_with_the_reason(w, queued, clock):
    jobs = queued.entities.jobs
    system = await w.system()
    calls = {"flaky": 0}

    async def flaky(actor, payload, key):
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise Transient("provider timeout")
        return Outcome.done()

    async def broken(actor, payload, key):
        raise ValueError("bad template")

    await jobs.enqueue(system.actor, "test.flaky", {}, clock.now, "flaky-1")
    await jobs.enqueue(system.actor, "test.broken", {}, clock.now, "broken-1")
    table = {"test.flaky": flaky, "test.broken": broken}
    for _ in range(20):  # retries are deferred by 2, 4, ... seconds of real time
        await _drain(queued, table)
        flaky_job, broken_job = await jobs.get(w.org, "flaky-1"), await jobs.get(w.org, "broken-1")
        if flaky_job["status"] == "done" and broken_job["status"] == "failed":
            break
        await asyncio.sleep(0.5)
    assert flaky_job["status"] == "done" and flaky_job["attempts"] == 3
    assert broken_job["status"] == "failed" and broken_job["lastError"] == "ValueError"
