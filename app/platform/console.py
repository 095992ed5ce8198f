"""What an organization's admins read of the platform's own records: the audit trail and the
jobs, as keyset pages with their counts.

Each read asks the caller's roles first (``AUDIT_RESOURCE`` / ``JOB_RESOURCE``, action
``list``): who may read them is the pack's role data, not a rule here. Every query names the
caller's organization (the store adds it to each filter), so another organization's records
are out of reach however a filter or a cursor is made. Each combination of filters is served
by an index declared next to its collection (``AUDIT_INDEXES``, ``JOB_INDEXES``).

Orders: the audit trail newest first (what changed lately is what an admin looks for); jobs
by their run time, earliest first (a timeline; ``since`` skips the past). Time ranges are
half-open, ``since <= t < until``, so consecutive ranges never count an entry twice. Changing
a job (retry, cancel) is the job service's (``app.platform.jobs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from app.platform.audit import AUDIT_COLLECTION, AUDIT_RESOURCE
from app.platform.entities import ActorEntities, Page
from app.platform.entities.query import cursor_condition, encode_cursor
from app.platform.entities.service import MAX_PAGE_SIZE
from app.platform.errors import BadUserInput
from app.platform.inputs import utc_datetime
from app.platform.jobs import JOB_RESOURCE, JOBS_COLLECTION, JobStatus
from app.platform.permissions import Action
from app.platform.store import Collection, and_filters

AUDIT_ORDER = (("at", -1), ("_id", -1))
JOB_ORDER = (("runAt", 1), ("_id", 1))
MAX_TEXT = 200  # an id, a type or an action name; anything longer matches nothing anyway


@dataclass(frozen=True)
class Listing:
    """A page of stored records and a way to count every record the filter matches."""

    page: Page[dict[str, Any]]
    count: Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class AuditQuery:
    entity_type: str | None = None
    entity_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def filter(self) -> dict[str, Any]:
        """The store filter; each field names what ``AuditLog.record`` stores."""
        return and_filters(
            _equal("entityType", _text("entityType", self.entity_type)),
            _equal("entityId", _text("entityId", self.entity_id)),
            _equal("actor.userId", _text("actorId", self.actor_id)),
            _time_range("at", self.since, self.until),
        )


@dataclass(frozen=True)
class JobQuery:
    statuses: Sequence[JobStatus] = ()
    type: str | None = None
    subject: str | None = None  # an entity id the job is about (one of its refs)
    since: datetime | None = None  # run time
    until: datetime | None = None

    def filter(self) -> dict[str, Any]:
        statuses = sorted({JobStatus(s).value for s in self.statuses})
        return and_filters(
            {"status": {"$in": statuses}} if statuses else None,
            _equal("type", _text("type", self.type)),
            _equal("refs", _text("subject", self.subject)),
            _time_range("runAt", self.since, self.until),
        )


async def audit_entries(
    entities: ActorEntities, query: AuditQuery, first: int = 20, after: str | None = None
) -> Listing:
    """The organization's audit trail, newest first."""
    entities.access.require_resource(AUDIT_RESOURCE, Action.LIST)
    collection = entities.service.store.collection(AUDIT_COLLECTION)
    return await _listing(collection, entities.actor.organization_id, query.filter(),
                          AUDIT_ORDER, first, after)  # fmt: skip


async def jobs(
    entities: ActorEntities, query: JobQuery, first: int = 20, after: str | None = None
) -> Listing:
    """The organization's jobs by run time, earliest first."""
    entities.access.require_resource(JOB_RESOURCE, Action.LIST)
    collection = entities.service.store.collection(JOBS_COLLECTION)
    return await _listing(collection, entities.actor.organization_id, query.filter(),
                          JOB_ORDER, first, after)  # fmt: skip


async def _listing(
    collection: Collection,
    org: str,
    where: Mapping[str, Any],
    order: Sequence[tuple[str, int]],
    first: int,
    after: str | None,
) -> Listing:
    """One keyset page (the sort values and id of the last row are the cursor, so records
    written meanwhile never shift a page) and its count, read only when asked for."""
    if first < 0:
        raise BadUserInput("'first' must not be negative.", {"first": "negative"})
    first = min(first, MAX_PAGE_SIZE)
    conditions = [cursor_condition(after, order)] if after else []

    async def count() -> int:
        return await collection.count(org, where)

    if first == 0:
        return Listing(Page([]), count)
    docs = await collection.find(
        org, and_filters(where, *conditions), sort=list(order), limit=first + 1
    )
    rows = docs[:first]
    page = Page(rows, len(docs) > first, partial(encode_cursor, spec=order))
    return Listing(page, count)


def _text(name: str, value: str | None) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise BadUserInput(f"{name} is longer than {MAX_TEXT} characters.", {name: "too long"})
    return value


def _equal(field: str, value: str | None) -> dict[str, Any] | None:
    return {field: value} if value is not None else None


def _time_range(
    field: str, since: datetime | None, until: datetime | None
) -> dict[str, Any] | None:
    """``since <= field < until``; either end may be open."""
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = utc_datetime(since, "from")
    if until is not None:
        bounds["$lt"] = utc_datetime(until, "to")
    if since is not None and until is not None and bounds["$gte"] >= bounds["$lt"]:
        raise BadUserInput("'from' must be before 'to'.", {"from": "not before 'to'"})
    return {field: bounds} if bounds else None
