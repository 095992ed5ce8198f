"""The admin console: the audit trail and the jobs, and retrying or cancelling a job.

Transport only: each field turns its arguments into one platform call and its records into
objects. Who may call them is decided by the organization's roles through the permission
engine (``auditLog`` / ``job`` resources, see ``app.platform.console`` and
``app.platform.jobs``); which job may be retried or cancelled is the job service's rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.types.base import Connection
from app.graphql.types.local import local
from app.platform import console
from app.platform import jobs as platform_jobs
from app.platform.entities.service import MAX_PAGE_SIZE

T = TypeVar("T")

# The platform's statuses, upper-cased; one list of them, the platform's.
JobStatus = strawberry.enum(
    Enum("JobStatus", [(s.name, s.value) for s in platform_jobs.JobStatus]),  # type: ignore[misc]
    description=(
        "PENDING: recorded, not yet handed to the queue; QUEUED: waiting in the queue (also "
        "between the tries of a transient failure); RUNNING: claimed by a worker; DONE; "
        "SKIPPED: ran and found nothing to do; FAILED; CANCELLED: by an admin before it "
        "started. retryJob: FAILED, SKIPPED or CANCELLED -> PENDING; cancelJob: PENDING or "
        "QUEUED -> CANCELLED."
    ),
)


@strawberry.type(description="Who made a change: a user, or a job acting as the system.")
class AuditActor:
    userId: str
    roles: list[str]
    system: bool
    onBehalfOf: str | None = strawberry.field(
        description="For system work done on a user's request (a booking's payment): the user"
    )


@strawberry.type(description="One change, as recorded: who, when, what and which fields.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    localAt = local("at")
    actor: AuditActor
    action: str = strawberry.field(
        description="create, update, delete (entities); settings.update, pack.install, "
        "agent.tool, job.retry, job.cancel"
    )
    entityType: str | None = strawberry.field(description="An entity type, or job")
    entityId: strawberry.ID | None = strawberry.field(description="An entity's id, or a job's")
    fields: list[str] = strawberry.field(
        description="Names of the fields written; values are never recorded"
    )
    details: JSON | None = strawberry.field(
        description="What else the entry holds: the pack installed, the agent tool called "
        "and its outcome, a job's status before the change"
    )


_AUDIT_KEYS = frozenset(
    {"_id", "organizationId", "at", "actor", "action", "entityType", "entityId", "fields"}
)


def audit_entry(doc: Mapping[str, Any]) -> AuditEntry:
    actor = doc.get("actor") or {}
    details = {k: v for k, v in doc.items() if k not in _AUDIT_KEYS}
    return AuditEntry(
        id=doc["_id"],
        at=doc["at"],
        actor=AuditActor(
            userId=actor.get("userId", ""),
            roles=list(actor.get("roles", ())),
            system=bool(actor.get("system")),
            onBehalfOf=actor.get("onBehalfOf"),
        ),
        action=doc["action"],
        entityType=doc.get("entityType"),
        entityId=doc.get("entityId"),
        fields=list(doc.get("fields", ())),
        details=details or None,
    )


@strawberry.type(description="A background job as recorded (admin).")
class ScheduledJob:
    id: strawberry.ID = strawberry.field(
        description="Stable for the job's life: its idempotency key; pass to retryJob/cancelJob"
    )
    type: str
    runAt: datetime = strawberry.field(description="When it is (or was) due")
    localRunAt = local("runAt")
    status: JobStatus  # type: ignore[valid-type]
    idempotencyKey: str
    subjects: list[strawberry.ID] = strawberry.field(
        description="Ids of the sessions or packs the job is about"
    )
    payload: JSON
    attempts: int = strawberry.field(description="Runs since it was (re)scheduled")
    retries: int = strawberry.field(description="How often an admin has retried it")
    lastError: str | None = strawberry.field(
        description="Why it failed, was skipped, or who cancelled it"
    )
    lastRunAt: datetime | None
    finishedAt: datetime | None


def scheduled_job(doc: Mapping[str, Any]) -> ScheduledJob:
    return ScheduledJob(
        id=doc["key"],
        type=doc["type"],
        runAt=doc["runAt"],
        status=JobStatus(doc["status"]),
        idempotencyKey=doc["key"],
        subjects=list(doc.get("refs", ())),
        payload=doc.get("payload") or {},
        attempts=doc.get("attempts", 0),
        retries=platform_jobs.retries_of(doc),
        lastError=doc.get("lastError"),
        lastRunAt=doc.get("lastRunAt"),
        finishedAt=doc.get("finishedAt"),
    )


def _connection(
    info: Info, listing: console.Listing, wrap: Callable[[Mapping[str, Any]], T]
) -> Connection[T]:
    info.context.limits.charge(1 + 2 * len(listing.page.items))  # connection, edges, nodes
    return Connection.of(listing.page, wrap, listing.count)


From = Annotated[
    datetime | None, strawberry.argument(name="from", description="Inclusive lower bound")
]
To = Annotated[datetime | None, strawberry.argument(description="Exclusive upper bound")]


@strawberry.type
class AdminQuery:
    @strawberry.field(
        description="Admin. The organization's audit trail, newest first; at within "
        f"[from, to). first is capped at {MAX_PAGE_SIZE}."
    )
    async def auditLog(
        self,
        info: Info,
        entityType: str | None = None,
        entityId: strawberry.ID | None = None,
        actorId: Annotated[
            strawberry.ID | None, strawberry.argument(description="The acting user's id")
        ] = None,
        from_: From = None,
        to: To = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[AuditEntry] | None:
        query = console.AuditQuery(entityType, entityId, actorId, from_, to)
        listing = await console.audit_entries(info.context.entities, query, first, after)
        return _connection(info, listing, audit_entry)

    @strawberry.field(
        description="Admin. The organization's jobs by run time, earliest first; runAt "
        f"within [from, to). first is capped at {MAX_PAGE_SIZE}."
    )
    async def scheduledJobs(
        self,
        info: Info,
        status: Annotated[
            list[JobStatus] | None,  # type: ignore[valid-type]
            strawberry.argument(description="Any of these; omitted or empty: every status"),
        ] = None,
        type: str | None = None,
        subject: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="A session's or pack's id: the jobs about it"),
        ] = None,
        from_: From = None,
        to: To = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[ScheduledJob] | None:
        statuses = [platform_jobs.JobStatus(s.value) for s in status or ()]
        query = console.JobQuery(statuses, type, subject, from_, to)
        listing = await console.jobs(info.context.entities, query, first, after)
        return _connection(info, listing, scheduled_job)


@strawberry.type
class AdminMutation:
    @strawberry.mutation(
        description="Admin. Runs a FAILED, SKIPPED or CANCELLED job again: PENDING, due now "
        "(a cancelled job not yet due keeps its time). Never sends a message twice."
    )
    async def retryJob(self, info: Info, id: strawberry.ID) -> ScheduledJob:
        entities = info.context.entities
        return scheduled_job(await entities.service.jobs.retry(entities, id))

    @strawberry.mutation(
        description="Admin. Cancels a PENDING or QUEUED job: CANCELLED, noting who did it; "
        "it will not run. A RUNNING job cannot be cancelled."
    )
    async def cancelJob(self, info: Info, id: strawberry.ID) -> ScheduledJob:
        entities = info.context.entities
        return scheduled_job(await entities.service.jobs.cancel(entities, id))
