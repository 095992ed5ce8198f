"""Retrying and cancelling jobs: over real HTTP, through the job service's run (as the worker
calls it), through the arq worker on a real Redis, and racing each other and the worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.platform.errors import AppError
from app.platform.jobs import JobStatus, Outcome, Transient
from app.platform.outbox import Outbox
from app.tutoring.jobs.handlers import handlers
from tests.booking_world import at, book, pack
from tests.conftest import DEV_SECRET
from tests.test_jobs import _drain

START = at(2)
REMIND = START - timedelta(hours=20)

JOB_FIELDS = "id status runAt attempts retries lastError lastRunAt finishedAt"
RETRY = f"mutation($id: ID!) {{ retryJob(id: $id) {{ {JOB_FIELDS} }} }}"
CANCEL = f"mutation($id: ID!) {{ cancelJob(id: $id) {{ {JOB_FIELDS} }} }}"
TRAIL = """query($key: ID!) { auditLog(entityType: "job", entityId: $key) {
  edges { node { action fields details actor { userId } } } } }"""


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def job_of(body: dict, field: str) -> dict:
    assert "errors" not in body, body["errors"]
    return body["data"][field]


async def reminders(w, session_id: str) -> list[dict]:
    admin = await w.as_role("admin")
    jobs = await w.service.jobs.for_refs(admin, [session_id])
    return sorted((j for j in jobs if j["type"] == "session.reminder"), key=lambda j: j["key"])


async def messages(store, org: str, **match) -> list[dict]:
    found = await Outbox(store).list(org)
    return [m for m in found if all(m.get(k) == v for k, v in match.items())]


async def failed_job(world, key: str = "test.job:1") -> str:
    """A job that ran and failed (a rule refused it)."""
    system = await world.system()
    jobs = world.service.jobs
    await jobs.enqueue(system.actor, "test.job", {}, world.service.clock(), key)

    async def refused(actor, payload, key):
        raise AppError("the provider refused it")

    assert await jobs.run(world.org, key, {"test.job": refused}) is JobStatus.FAILED
    return key


class Counting:
    """A handler that counts its runs (and may wait until released)."""

    def __init__(self, hold: bool = False) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, actor, payload, key) -> Outcome:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        return Outcome.done()


# -- over HTTP ---------------------------------------------------------------------------------


async def test_a_cancelled_job_runs_nothing_when_its_message_arrives(api, w, clock):
    session = await book(await w.as_role("admin"), w, START, entitlement=await pack(w))
    first, second = [j["key"] for j in await reminders(w, session.id)]
    cancelled = job_of(await api.gql(CANCEL, {"id": first}), "cancelJob")
    assert cancelled["status"] == "CANCELLED" and cancelled["lastError"] == "cancelled by u-admin"
    assert cancelled["finishedAt"] == clock.now.isoformat()

    clock.now = REMIND  # the queue delivers both reminders
    table = handlers(w.service)
    assert await w.service.jobs.run(w.org, first, table) is JobStatus.CANCELLED
    assert await w.service.jobs.run(w.org, second, table) is JobStatus.DONE
    assert [m["idempotencyKey"] for m in await messages(w.service.store, w.org)] == [second]

    for key, status in ((first, "cancelled"), (second, "done")):
        refused = await api.gql(CANCEL, {"id": key})
        assert codes(refused) == ["INVALID_TRANSITION"]
        assert refused["errors"][0]["extensions"]["status"] == status
    trail = job_of(await api.gql(TRAIL, {"key": first}), "auditLog")["edges"]
    assert [e["node"] for e in trail] == [
        {"action": "job.cancel", "fields": ["status"], "details": {"previousStatus": "pending"},
         "actor": {"userId": "u-admin"}},
    ]  # fmt: skip


async def test_a_failed_job_is_retried_due_now_in_a_new_round(api, world, clock):
    key = await failed_job(world)
    clock.advance(hours=1)
    retried = job_of(await api.gql(RETRY, {"id": key}), "retryJob")
    assert retried == {
        "id": key, "status": "PENDING", "runAt": clock.now.isoformat(), "attempts": 0,
        "retries": 1, "lastError": None, "lastRunAt": retried["lastRunAt"], "finishedAt": None,
    }  # fmt: skip
    jobs, ran = world.service.jobs, Counting()
    # The first round's message, if the queue still delivers it, finds the job moved on.
    assert await jobs.run(world.org, key, {"test.job": ran}, 0) is JobStatus.PENDING
    assert ran.runs == 0
    assert await jobs.run(world.org, key, {"test.job": ran}, 1) is JobStatus.DONE
    assert ran.runs == 1
    refused = await api.gql(RETRY, {"id": key})
    assert codes(refused) == ["INVALID_TRANSITION"]
    assert "done" in refused["errors"][0]["message"]
    trail = job_of(await api.gql(TRAIL, {"key": key}), "auditLog")["edges"]
    assert [(e["node"]["action"], e["node"]["details"]) for e in trail] == [
        ("job.retry", {"previousStatus": "failed"})
    ]


async def test_a_cancelled_job_retried_goes_back_to_its_time(api, w, clock):
    session = await book(await w.as_role("admin"), w, START, entitlement=await pack(w))
    key = (await reminders(w, session.id))[0]["key"]
    job_of(await api.gql(CANCEL, {"id": key}), "cancelJob")
    restored = job_of(await api.gql(RETRY, {"id": key}), "retryJob")
    assert restored["status"] == "PENDING" and restored["runAt"] == REMIND.isoformat()
    assert restored["retries"] == 1
    clock.now = REMIND
    assert await w.service.jobs.run(w.org, key, handlers(w.service), 1) is JobStatus.DONE
    assert len(await messages(w.service.store, w.org, idempotencyKey=key)) == 1


async def test_open_unknown_and_foreign_jobs_are_refused(api, world, other_world):
    system = await world.system()
    await world.service.jobs.enqueue(system.actor, "test.job", {}, world.service.clock(), "open")
    assert codes(await api.gql(RETRY, {"id": "open"})) == ["INVALID_TRANSITION"]
    theirs = await failed_job(other_world, "theirs")
    for document in (RETRY, CANCEL):
        for key in ("no-such-job", theirs):
            assert codes(await api.gql(document, {"id": key})) == ["NOT_FOUND"]
    assert (await other_world.service.jobs.get(other_world.org, theirs))["status"] == "failed"
    from app.platform.auth import mint_dev_token

    their_admin = mint_dev_token(DEV_SECRET, org=other_world.org, user="u-admin", roles=["admin"])
    mine = await api.gql(RETRY, {"id": "open"}, token=their_admin)
    assert codes(mine) == ["NOT_FOUND"]


# -- through the arq worker on a real Redis ----------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message) -> None:
        self.sent.append(message["idempotencyKey"])


async def test_a_retried_reminder_whose_message_went_out_sends_nothing_more(api, w, queued, clock):
    session = await book(await w.as_role("admin"), w, START, entitlement=await pack(w))
    clock.now = REMIND
    real = handlers(w.service)

    async def written_then_failed(actor, payload, key):
        await real["session.reminder"](actor, payload, key)  # the message is written ...
        raise AppError("the provider refused the delivery receipt")  # ... then the job fails

    await _drain(queued, {**real, "session.reminder": written_then_failed})
    jobs = await reminders(w, session.id)
    assert {j["status"] for j in jobs} == {"failed"}
    outbox, sender = Outbox(queued.store, clock=clock), Recorder()
    assert await outbox.deliver(sender) == 2

    key = jobs[0]["key"]
    retried = job_of(await api.gql(RETRY, {"id": key}), "retryJob")
    assert retried["status"] == "QUEUED" and retried["retries"] == 1  # handed to Redis again
    await _drain(queued)  # the real handlers this time
    # It ran again (one attempt in its new round) and found its message already written.
    after = await w.service.jobs.get(w.org, key)
    assert (after["status"], after["attempts"]) == ("skipped", 1)
    assert after["lastError"] == "message already written"
    assert await outbox.deliver(sender) == 0
    assert sorted(sender.sent) == sorted(j["key"] for j in jobs)  # each once
    assert len(await messages(queued.store, w.org, idempotencyKey=key)) == 1


async def test_the_worker_runs_nothing_of_a_cancelled_job(api, w, queued, clock):
    session = await book(await w.as_role("admin"), w, START, entitlement=await pack(w))
    keys = [j["key"] for j in await reminders(w, session.id)]
    for key in keys:
        assert job_of(await api.gql(CANCEL, {"id": key}), "cancelJob")["status"] == "CANCELLED"
    clock.now = REMIND
    await _drain(queued)
    assert await messages(queued.store, w.org, template="session_reminder") == []
    assert {j["status"] for j in await reminders(w, session.id)} == {"cancelled"}


# -- races ---------------------------------------------------------------------------------


async def test_two_retries_at_once_make_one_round(world):
    key = await failed_job(world)
    one, two = await world.as_user("u-a1", "admin"), await world.as_user("u-a2", "admin")
    jobs = world.service.jobs
    results = await asyncio.gather(jobs.retry(one, key), jobs.retry(two, key),
                                   return_exceptions=True)  # fmt: skip
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and str(errors[0].code) == "INVALID_TRANSITION"
    assert (await jobs.get(world.org, key))["retries"] == 1
    trail = await world.service.audit.for_entity(world.org, key)
    assert [e["action"] for e in trail] == ["job.retry"]  # the refused one took its entry back


async def test_a_late_message_and_the_retried_round_run_the_job_once(world):
    key = await failed_job(world)
    jobs, ran = world.service.jobs, Counting()
    await jobs.retry(await world.as_role("admin"), key)
    table = {"test.job": ran}
    await asyncio.gather(jobs.run(world.org, key, table, 0), jobs.run(world.org, key, table, 1))
    assert ran.runs == 1 and (await jobs.get(world.org, key))["status"] == "done"


async def test_a_retry_racing_a_late_message_of_the_failed_round_runs_nothing_twice(world):
    key = await failed_job(world)
    jobs, ran = world.service.jobs, Counting()
    table = {"test.job": ran}
    admin = await world.as_role("admin")
    await asyncio.gather(jobs.retry(admin, key), jobs.run(world.org, key, table, 0))
    assert ran.runs == 0  # the failed round's message never runs a finished or retried job
    assert await jobs.run(world.org, key, table, 1) is JobStatus.DONE
    assert ran.runs == 1


async def test_a_cancel_racing_the_workers_claim_never_both_wins(world):
    """The run is started after 0, 1, 2 ... turns of the event loop, so the two conditional
    updates meet in every order the in-memory store (which yields on every call) allows."""
    system, jobs = await world.system(), world.service.jobs
    admin = await world.as_role("admin")
    outcomes = set()
    for delay in range(6):
        key, ran = f"race-{delay}", Counting()
        await jobs.enqueue(system.actor, "test.job", {}, world.service.clock(), key)

        async def run_later(key=key, ran=ran, delay=delay):
            for _ in range(delay):
                await asyncio.sleep(0)
            return await jobs.run(world.org, key, {"test.job": ran})

        cancelled, _ = await asyncio.gather(jobs.cancel(admin, key), run_later(),
                                            return_exceptions=True)  # fmt: skip
        status = (await jobs.get(world.org, key))["status"]
        trail = [e["action"] for e in await world.service.audit.for_entity(world.org, key)]
        if isinstance(cancelled, Exception):
            assert str(cancelled.code) == "INVALID_TRANSITION"
            assert (status, ran.runs, trail) == ("done", 1, [])
            outcomes.add("ran")
        else:
            assert (status, ran.runs, trail) == ("cancelled", 0, ["job.cancel"])
            outcomes.add("cancelled")
    assert outcomes == {"ran", "cancelled"}


async def test_a_running_job_cannot_be_cancelled_but_one_waiting_to_retry_can(world):
    system, jobs = await world.system(), world.service.jobs
    admin = await world.as_role("admin")
    now = world.service.clock()
    slow = Counting(hold=True)
    await jobs.enqueue(system.actor, "test.slow", {}, now, "slow")
    task = asyncio.create_task(jobs.run(world.org, "slow", {"test.slow": slow}))
    await asyncio.wait_for(slow.started.wait(), 5)
    assert (await jobs.get(world.org, "slow"))["status"] == "running"
    with pytest.raises(AppError) as refused:
        await jobs.cancel(admin, "slow")
    assert str(refused.value.code) == "INVALID_TRANSITION" and "running" in refused.value.message
    slow.release.set()
    assert await task is JobStatus.DONE

    async def flaky(actor, payload, key):
        raise Transient("provider timeout")

    await jobs.enqueue(system.actor, "test.flaky", {}, now, "flaky")
    with pytest.raises(Transient):
        await jobs.run(world.org, "flaky", {"test.flaky": flaky})
    waiting = await jobs.get(world.org, "flaky")
    assert (waiting["status"], waiting["lastError"]) == ("queued", "provider timeout")
    assert (await jobs.cancel(admin, "flaky"))["status"] == "cancelled"
    assert await jobs.run(world.org, "flaky", {"test.flaky": flaky}) is JobStatus.CANCELLED


async def test_an_interrupted_run_goes_back_to_the_queue(world):
    system, jobs = await world.system(), world.service.jobs
    hung = Counting(hold=True)
    await jobs.enqueue(system.actor, "test.hung", {}, world.service.clock(), "hung")
    task = asyncio.create_task(jobs.run(world.org, "hung", {"test.hung": hung}))
    await asyncio.wait_for(hung.started.wait(), 5)
    task.cancel()  # the worker stops; arq puts the message back
    with pytest.raises(asyncio.CancelledError):
        await task
    job = await jobs.get(world.org, "hung")
    assert (job["status"], job["lastError"]) == ("queued", "interrupted")
    hung.release.set()
    assert await jobs.run(world.org, "hung", {"test.hung": hung}) is JobStatus.DONE
