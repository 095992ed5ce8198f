"""Background jobs: recorded in the store, delivered by a queue (arq on Redis).

The ``jobs`` collection is the source of truth: a job is written there first, under its
idempotency key (unique per organization), and only then handed to the queue with that key as
the queue's job id and its run time as the deferral. So enqueueing twice is one job; a Redis
flush or restart loses nothing, because ``reconcile`` hands every job that is still pending
but unknown to the queue back to it; and execution is at least once, which handlers make safe
by being idempotent.

Admins may retry a finished job or cancel one that has not started (``retry``, ``cancel``).
Each retry starts a new *round*: the job's ``retries`` count, carried in the queue message, so
a message of an earlier round that arrives late finds the job moved on and runs nothing.
Every change of status is a conditional update on the status it was read in, so an admin's
retry or cancel and a worker's claim never both win.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from app.platform import logs, metrics
from app.platform.actor import Actor
from app.platform.changes import Changes
from app.platform.clock import Clock, system_clock
from app.platform.errors import AppError, ErrorCode, NotFound
from app.platform.permissions import Action
from app.platform.store import IndexSpec, Store
from app.platform.undo import register, undo_on_failure

if TYPE_CHECKING:
    from app.platform.entities import ActorEntities

log = logging.getLogger(__name__)

JOBS_COLLECTION = "jobs"
JOB_RESOURCE = "job"
JOB_INDEXES = (
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("key", 1)), unique=True),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("status", 1), ("runAt", 1))),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("refs", 1), ("runAt", 1), ("key", 1))),
    # The admin console's pages (``app.platform.console``): every job by time, and by type
    # alone or with the status or the subject it is about.
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("runAt", 1))),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("type", 1), ("runAt", 1))),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("type", 1), ("status", 1), ("runAt", 1))),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("type", 1), ("refs", 1), ("runAt", 1))),
)
MAX_ATTEMPTS = 5


class JobStatus(StrEnum):
    PENDING = "pending"  # recorded, not (yet) known to the queue
    QUEUED = "queued"  # handed to the queue (also between the tries of a transient failure)
    RUNNING = "running"  # claimed by a worker (or interrupted there, and about to run again)
    DONE = "done"
    SKIPPED = "skipped"  # ran and found nothing to do (e.g. the session was cancelled)
    FAILED = "failed"
    CANCELLED = "cancelled"  # by an admin, before it started


# Not started: an admin may cancel them; an undone operation forgets them.
WAITING = (JobStatus.PENDING, JobStatus.QUEUED)
# A worker may claim them (a run interrupted by a crash runs again); reconcile re-queues them.
OPEN = (*WAITING, JobStatus.RUNNING)
# Finished without doing their work (or stopped): an admin may run them again.
RETRYABLE = (JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.CANCELLED)


class Transient(Exception):
    """A failure worth retrying (a provider timeout); anything else fails the job."""


class NotDue(Exception):
    """The queue delivered a job before its time (clock skew, a reconcile): run it later."""

    def __init__(self, delay: timedelta) -> None:
        super().__init__(f"not due for {delay}")
        self.delay = delay


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    note: str = ""

    @classmethod
    def done(cls, note: str = "") -> Outcome:
        return cls(JobStatus.DONE, note)

    @classmethod
    def skipped(cls, note: str) -> Outcome:
        return cls(JobStatus.SKIPPED, note)


# (the system actor for the job, its payload, its idempotency key) -> what happened
Handler = Callable[[Actor, Mapping[str, Any], str], Awaitable[Outcome]]


class Queue(Protocol):
    """Delivers ``(org, key, retries)`` at ``run_at``: one message per round of a job."""

    async def push(self, org: str, key: str, run_at: datetime, retries: int = 0) -> None: ...
    async def knows(self, org: str, key: str, retries: int = 0) -> bool: ...


def retries_of(job: Mapping[str, Any]) -> int:
    """The job's round: how often an admin has retried it."""
    return int(job.get("retries") or 0)


def _in_round(retries: int) -> dict[str, Any]:
    """The filter for a job still in the round of ``retries``. Jobs recorded before retries
    existed carry no count; MongoDB's null matches the missing field."""
    return {"retries": retries} if retries else {"retries": {"$in": [0, None]}}


def _transition_refused(
    key: str, status: str, allowed: tuple[JobStatus, ...], verb: str
) -> AppError:
    names = [s.value for s in allowed]
    either = f"{', '.join(names[:-1])} or {names[-1]}"
    return AppError(
        f"Job {key!r} is {status}; only {either} jobs can be {verb}.",
        code=ErrorCode.INVALID_TRANSITION,
        details={"status": status},
    )


def job_document_id(org: str, key: str) -> str:
    return f"{org}:{key}"


class JobService:
    def __init__(
        self, store: Store, *, clock: Clock = system_clock, changes: Changes | None = None
    ) -> None:
        self._col = store.collection(JOBS_COLLECTION)
        self._clock = clock
        self.queue: Queue | None = None  # set when a queue (Redis) is configured
        self._changes = changes or Changes()

    async def _announce(self, org: str, key: str, status: str) -> None:
        """A job's status changed (``pending`` when recorded): admins watching jobs hear of
        it (``jobChanged``); held until the operation that scheduled it succeeds."""
        await self._changes.record(org, JOB_RESOURCE, job_document_id(org, key), status)

    async def enqueue(
        self,
        actor: Actor,
        type: str,
        payload: Mapping[str, Any],
        scheduled_for: datetime,
        idempotency_key: str,
        *,
        refs: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Records the job once per key and hands it to the queue. ``refs`` are entity ids the
        job concerns, for ``scheduledJobs(subject:)``."""
        org = actor.organization_id
        matched = await self._col.update_one(
            org,
            {"key": idempotency_key},
            {
                "$setOnInsert": {
                    "_id": job_document_id(org, idempotency_key),
                    "key": idempotency_key,
                    "type": type,
                    "payload": dict(payload),
                    "runAt": scheduled_for,
                    "status": JobStatus.PENDING.value,
                    "attempts": 0,
                    "retries": 0,
                    "lastError": None,
                    "refs": list(refs),
                    "createdAt": self._clock(),
                    "createdBy": actor.audit_dict(),
                    # The request that scheduled it, so its run can be traced back in the logs.
                    "requestId": logs.request_id.get(),
                }
            },
            upsert=True,
        )
        if not matched:  # recorded now: an operation that fails later takes it back
            register(f"job {idempotency_key}", lambda: self.discard(org, idempotency_key))
            await self._announce(org, idempotency_key, JobStatus.PENDING.value)
        job = await self._col.find_one(org, {"key": idempotency_key})
        assert job is not None
        if job["status"] == JobStatus.PENDING:
            await self._push(org, job)
        return job

    async def discard(self, org: str, key: str) -> None:
        """Forgets a job that was recorded for an operation that was then undone; if the
        queue still delivers it, ``run`` finds no record and skips it."""
        await self._col.delete_one(org, {"key": key, "status": {"$in": [s.value for s in WAITING]}})

    async def _push(self, org: str, job: Mapping[str, Any]) -> None:
        if self.queue is None:
            return  # stays pending; reconcile hands it over once a queue exists
        try:
            await self.queue.push(org, job["key"], job["runAt"], retries_of(job))
        except Exception:  # Redis down: the job is safe in the store, reconcile retries
            log.warning("could not queue job %s of %s; it stays pending", job["key"], org)
            return
        try:
            marked = await self._col.update_one(
                org,
                {
                    "key": job["key"],
                    "status": JobStatus.PENDING.value,
                    **_in_round(retries_of(job)),
                },
                {"$set": {"status": JobStatus.QUEUED.value}},
            )
        except Exception:  # recorded and queued; reconcile finds it known to the queue
            log.warning("job %s of %s is queued but still marked pending", job["key"], org)
            return
        if marked:
            await self._announce(org, job["key"], JobStatus.QUEUED.value)

    async def for_refs(
        self, entities: ActorEntities, refs: list[str] | None
    ) -> list[dict[str, Any]]:
        """All jobs about these entities, at most 500 (admins; the console pages through
        ``app.platform.console.jobs`` instead)."""
        entities.access.require_resource(JOB_RESOURCE, Action.LIST)
        org = entities.actor.organization_id
        query: dict[str, Any] = {"refs": {"$in": refs}} if refs else {}
        return await self._col.find(org, query, sort=[("runAt", 1), ("key", 1)], limit=500)

    async def get(self, org: str, key: str) -> dict[str, Any] | None:
        return await self._col.find_one(org, {"key": key})

    async def by_id(self, org: str, job_id: str) -> dict[str, Any] | None:
        """A job by its document id (what ``jobChanged`` announces)."""
        return await self._col.find_one(org, {"_id": job_id})

    @metrics.job_run  # a span per run; counts of outcomes by job type
    async def run(
        self, org: str, key: str, handlers: Mapping[str, Handler], retries: int = 0
    ) -> JobStatus:
        """Executes one job (called by the worker with the round its message was sent for).
        Finished, cancelled and retried-since jobs are not run; a transient failure is
        retried by the queue, up to ``MAX_ATTEMPTS``."""
        now = self._clock()
        current = await self.get(org, key)
        if current is None:
            return JobStatus.SKIPPED
        if retries_of(current) != retries:  # a late message of an earlier round
            return JobStatus(current["status"])
        if current["status"] in OPEN and current["runAt"] > now:
            raise NotDue(current["runAt"] - now)
        # The claim: one conditional update, so a cancel or a retry either happens before it
        # (and nothing runs) or finds the job running (and is refused).
        job = await self._col.find_one_and_update(
            org,
            {"key": key, "status": {"$in": [s.value for s in OPEN]}, **_in_round(retries)},
            {
                "$inc": {"attempts": 1},
                "$set": {"lastRunAt": now, "status": JobStatus.RUNNING.value},
            },
        )
        if job is None:
            current = await self.get(org, key)
            return JobStatus(current["status"]) if current else JobStatus.SKIPPED
        metrics.job_claimed(job["type"])
        await self._announce(org, key, JobStatus.RUNNING.value)
        handler = handlers.get(job["type"])
        if handler is None:
            return await self._finish(org, key, JobStatus.FAILED, f"no handler for {job['type']}")
        actor = Actor.system(org, job["type"])
        try:
            with logs.bound(request=job.get("requestId"), organization=org, user=actor.user_id):
                outcome = await handler(actor, job["payload"], key)
        except Transient as exc:
            if job["attempts"] >= MAX_ATTEMPTS:
                return await self._finish(org, key, JobStatus.FAILED, f"gave up: {exc}")
            await self._requeue(org, key, str(exc))
            raise
        except AppError as exc:  # a rule refused: retrying would not change that
            return await self._finish(org, key, JobStatus.FAILED, f"{exc.code}: {exc.message}")
        except Exception as exc:
            log.exception("job %s of %s failed", key, org)
            if job["attempts"] >= MAX_ATTEMPTS:
                return await self._finish(org, key, JobStatus.FAILED, type(exc).__name__)
            await self._requeue(org, key, type(exc).__name__)
            raise Transient(type(exc).__name__) from exc
        except asyncio.CancelledError:  # a stopping worker: the queue runs it again
            await asyncio.shield(self._requeue(org, key, "interrupted"))
            raise
        return await self._finish(org, key, outcome.status, outcome.note or None)

    async def _requeue(self, org: str, key: str, error: str) -> None:
        """Back to waiting between the queue's tries (so an admin may cancel it)."""
        requeued = await self._col.update_one(
            org,
            {"key": key, "status": JobStatus.RUNNING.value},
            {"$set": {"status": JobStatus.QUEUED.value, "lastError": error}},
        )
        if requeued:
            await self._announce(org, key, JobStatus.QUEUED.value)

    async def _finish(self, org: str, key: str, status: JobStatus, note: str | None) -> JobStatus:
        await self._col.update_one(
            org,
            {"key": key},
            {"$set": {"status": status.value, "lastError": note, "finishedAt": self._clock()}},
        )
        metrics.job_finished(status.value)
        await self._announce(org, key, status.value)
        return status

    async def reconcile(self) -> int:
        """Hands every open job the queue does not know back to it (after a Redis flush or
        restart). Returns how many were handed over."""
        if self.queue is None:
            return 0
        count = 0
        open_statuses = {"status": {"$in": [s.value for s in OPEN]}}
        for org in await self._col.organizations(open_statuses):
            for job in await self._col.find(org, open_statuses):
                retries = retries_of(job)
                if not await self.queue.knows(org, job["key"], retries):
                    await self.queue.push(org, job["key"], job["runAt"], retries)
                    await self._col.update_one(
                        org,
                        {
                            "key": job["key"],
                            "status": JobStatus.PENDING.value,
                            **_in_round(retries),
                        },
                        {"$set": {"status": JobStatus.QUEUED.value}},
                    )
                    await self._announce(org, job["key"], JobStatus.QUEUED.value)
                    count += 1
        return count

    # -- the admin console: retry and cancel -------------------------------------------

    async def retry(self, entities: ActorEntities, key: str) -> dict[str, Any]:
        """Runs a failed, skipped or cancelled job again, in a new round: due now, or at its
        time if that is still ahead (a cancelled job not yet due goes back on schedule), with
        its attempts counted afresh. Handlers are idempotent, so a retried job whose work was
        done (a message written under its key) does nothing more."""
        entities.access.require_resource(JOB_RESOURCE, Action.UPDATE)
        org, now = entities.actor.organization_id, self._clock()
        async with undo_on_failure():
            job = await self._for_change(org, key)
            status, retries = job["status"], retries_of(job)
            if status not in RETRYABLE:
                raise _transition_refused(key, status, RETRYABLE, "retried")
            await self._audit(entities, "job.retry", key, status, ("status", "runAt"), now)
            updated = await self._col.find_one_and_update(
                org,
                {"key": key, "status": status, **_in_round(retries)},
                {
                    "$set": {
                        "status": JobStatus.PENDING.value,
                        "runAt": max(job["runAt"], now),
                        "attempts": 0,
                        "lastError": None,
                        "finishedAt": None,
                        "retriedAt": now,
                        "retriedBy": entities.actor.audit_dict(),
                        "requestId": logs.request_id.get(),
                    },
                    "$inc": {"retries": 1},
                },
            )
            if updated is None:  # changed since it was read: by another admin, or a worker
                raise await self._refused_now(org, key, RETRYABLE, "retried")
            await self._announce(org, key, JobStatus.PENDING.value)
        await self._push(org, updated)
        return await self.get(org, key) or updated

    async def cancel(self, entities: ActorEntities, key: str) -> dict[str, Any]:
        """Cancels a job that has not started. Its queue message may still arrive; the run
        then finds it cancelled and does nothing. A running job cannot be cancelled."""
        entities.access.require_resource(JOB_RESOURCE, Action.UPDATE)
        org, now = entities.actor.organization_id, self._clock()
        async with undo_on_failure():
            job = await self._for_change(org, key)
            status = job["status"]
            if status not in WAITING:
                raise _transition_refused(key, status, WAITING, "cancelled")
            await self._audit(entities, "job.cancel", key, status, ("status",), now)
            updated = await self._col.find_one_and_update(
                org,
                {
                    "key": key,
                    "status": {"$in": [s.value for s in WAITING]},
                    **_in_round(retries_of(job)),
                },
                {
                    "$set": {
                        "status": JobStatus.CANCELLED.value,
                        "lastError": f"cancelled by {entities.actor.user_id}",
                        "finishedAt": now,
                        "cancelledBy": entities.actor.audit_dict(),
                    }
                },
            )
            if updated is None:  # a worker claimed it meanwhile
                raise await self._refused_now(org, key, WAITING, "cancelled")
            await self._announce(org, key, JobStatus.CANCELLED.value)
        return updated

    async def _for_change(self, org: str, key: str) -> dict[str, Any]:
        job = await self.get(org, key)
        if job is None:
            raise NotFound("job", key)
        return job

    async def _refused_now(
        self, org: str, key: str, allowed: tuple[JobStatus, ...], verb: str
    ) -> AppError:
        job = await self._for_change(org, key)
        return _transition_refused(key, job["status"], allowed, verb)

    async def _audit(
        self,
        entities: ActorEntities,
        action: str,
        key: str,
        status: str,
        fields: tuple[str, ...],
        at: datetime,
    ) -> None:
        """Recorded before the change and taken back if it does not happen."""
        await entities.service.audit.record(
            entities.actor,
            action,
            at=at,
            entity_type=JOB_RESOURCE,
            entity_id=key,
            fields=fields,
            extra={"previousStatus": status},
        )
