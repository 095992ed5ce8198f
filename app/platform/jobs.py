"""Background jobs: recorded in the store, delivered by a queue (arq on Redis).

The ``jobs`` collection is the source of truth: a job is written there first, under its
idempotency key (unique per organization), and only then handed to the queue with that key as
the queue's job id and its run time as the deferral. So enqueueing twice is one job; a Redis
flush or restart loses nothing, because ``reconcile`` hands every job that is still pending
but unknown to the queue back to it; and execution is at least once, which handlers make safe
by being idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from app.platform import logs, metrics
from app.platform.actor import Actor
from app.platform.changes import Changes
from app.platform.clock import Clock, system_clock
from app.platform.errors import AppError
from app.platform.permissions import Action
from app.platform.store import IndexSpec, Store
from app.platform.undo import register

log = logging.getLogger(__name__)

JOBS_COLLECTION = "jobs"
JOB_RESOURCE = "job"
JOB_INDEXES = (
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("key", 1)), unique=True),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("status", 1), ("runAt", 1))),
    IndexSpec(JOBS_COLLECTION, (("organizationId", 1), ("refs", 1), ("runAt", 1), ("key", 1))),
)
MAX_ATTEMPTS = 5


class JobStatus(StrEnum):
    PENDING = "pending"  # recorded, not (yet) known to the queue
    QUEUED = "queued"  # handed to the queue
    DONE = "done"
    SKIPPED = "skipped"  # ran and found nothing to do (e.g. the session was cancelled)
    FAILED = "failed"


OPEN = (JobStatus.PENDING, JobStatus.QUEUED)


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
    async def push(self, org: str, key: str, run_at: datetime) -> None: ...
    async def knows(self, org: str, key: str) -> bool: ...


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
        job concerns, for ``scheduledJobs(sessionId:, entitlementId:)``."""
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
        await self._col.delete_one(org, {"key": key, "status": {"$in": [s.value for s in OPEN]}})

    async def _push(self, org: str, job: Mapping[str, Any]) -> None:
        if self.queue is None:
            return  # stays pending; reconcile hands it over once a queue exists
        try:
            await self.queue.push(org, job["key"], job["runAt"])
        except Exception:  # Redis down: the job is safe in the store, reconcile retries
            log.warning("could not queue job %s of %s; it stays pending", job["key"], org)
            return
        try:
            marked = await self._col.update_one(
                org,
                {"key": job["key"], "status": JobStatus.PENDING.value},
                {"$set": {"status": JobStatus.QUEUED.value}},
            )
        except Exception:  # recorded and queued; reconcile finds it known to the queue
            log.warning("job %s of %s is queued but still marked pending", job["key"], org)
            return
        if marked:
            await self._announce(org, job["key"], JobStatus.QUEUED.value)

    async def for_refs(self, entities: Any, refs: list[str] | None) -> list[dict[str, Any]]:
        """Admin view for ``scheduledJobs``."""
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
    async def run(self, org: str, key: str, handlers: Mapping[str, Handler]) -> JobStatus:
        """Executes one job (called by the worker). Finished jobs are not run again; a
        transient failure is retried by the queue, up to ``MAX_ATTEMPTS``."""
        now = self._clock()
        due = await self.get(org, key)
        if due is not None and due["status"] in OPEN and due["runAt"] > now:
            raise NotDue(due["runAt"] - now)
        job = await self._col.find_one_and_update(
            org,
            {"key": key, "status": {"$in": [s.value for s in OPEN]}},
            {"$inc": {"attempts": 1}, "$set": {"lastRunAt": now}},
        )
        if job is None:
            current = await self.get(org, key)
            return JobStatus(current["status"]) if current else JobStatus.SKIPPED
        metrics.job_claimed(job["type"])
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
            await self._col.update_one(org, {"key": key}, {"$set": {"lastError": str(exc)}})
            raise
        except AppError as exc:  # a rule refused: retrying would not change that
            return await self._finish(org, key, JobStatus.FAILED, f"{exc.code}: {exc.message}")
        except Exception as exc:
            log.exception("job %s of %s failed", key, org)
            if job["attempts"] >= MAX_ATTEMPTS:
                return await self._finish(org, key, JobStatus.FAILED, type(exc).__name__)
            raise Transient(type(exc).__name__) from exc
        return await self._finish(org, key, outcome.status, outcome.note or None)

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
                if not await self.queue.knows(org, job["key"]):
                    await self.queue.push(org, job["key"], job["runAt"])
                    await self._col.update_one(
                        org,
                        {"key": job["key"], "status": job["status"]},
                        {"$set": {"status": JobStatus.QUEUED.value}},
                    )
                    await self._announce(org, job["key"], JobStatus.QUEUED.value)
                    count += 1
        return count
