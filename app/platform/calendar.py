"""Race-free interval claims on a named resource (a teacher's or a student's time).

A resource's busy intervals live in one document per ISO week (a *bucket*). A claim is one
conditional update per bucket its padded interval touches: "push this interval if no live
interval overlaps it" (with padding on both sides for buffers). MongoDB applies a
single-document update atomically, so of any set of overlapping claims racing each other --
in one process or across many API processes -- exactly the first to reach the bucket where
they overlap succeeds and the rest match nothing and get ``CONFLICT``. (Two overlapping
claims always share the bucket of a moment they overlap in, since each is written to every
bucket its padded span touches; a claim that spans two weeks writes both, and takes the
first back if the second loses.) Buckets keep every document small whatever a teacher's
diary holds: a claim reads and writes a week, not years of sessions, and no document nears
MongoDB's size limit.

Claims, releases and expiry changes made inside an operation register their inverse with it
(``app.platform.undo``), so a booking that fails after claiming leaves no claim behind.

Intervals may carry ``expiresAt``: a hold (a session awaiting payment) stops blocking once it
expires, without any job having to run. Each records ``claimedAt`` so that the owner of a
claim whose entity was never written (a crash between claim and write) can be recognised and
the claim cleared when it gets in someone's way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from app.platform.clock import Clock, system_clock
from app.platform.errors import Conflict
from app.platform.store import DuplicateKey, IndexSpec, Store
from app.platform.undo import in_operation, register

CALENDARS_COLLECTION = "calendars"
CALENDAR_INDEXES = (
    IndexSpec(
        CALENDARS_COLLECTION,
        (("organizationId", 1), ("resource", 1), ("bucket", 1)),
        unique=True,
    ),
)
# Intervals that ended this long ago are pruned; nothing can be booked in the past.
_KEEP_PAST = timedelta(days=2)


@dataclass(frozen=True)
class Interval:
    claim_id: str
    owner: str
    start: datetime
    end: datetime
    expires_at: datetime | None
    claimed_at: datetime | None = None

    @classmethod
    def from_doc(cls, raw: dict[str, Any]) -> Interval:
        return cls(
            raw["claimId"],
            raw["owner"],
            raw["start"],
            raw["end"],
            raw.get("expiresAt"),
            raw.get("claimedAt"),
        )

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def overlaps(self, start: datetime, end: datetime, padding: timedelta = timedelta(0)) -> bool:
        return self.start < end + padding and self.end > start - padding


def _live(now: datetime) -> dict[str, Any]:
    return {"$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}]}


def bucket_of(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def buckets(start: datetime, end: datetime) -> list[str]:
    """The weeks [start, end) touches, in order."""
    out: list[str] = []
    moment = start
    while moment < end or not out:
        name = bucket_of(moment)
        if not out or out[-1] != name:
            out.append(name)
        monday = moment.astimezone(UTC) - timedelta(days=moment.astimezone(UTC).weekday())
        moment = monday.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=7)
    last = bucket_of(end - timedelta(microseconds=1)) if end > start else out[-1]
    return out if out[-1] == last else [*out, last]


class ResourceCalendar:
    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self._col = store.collection(CALENDARS_COLLECTION)
        self._clock = clock

    async def _ensure(self, org: str, resource: str, bucket: str) -> None:
        try:
            await self._col.update_one(
                org,
                {"resource": resource, "bucket": bucket},
                {"$setOnInsert": {"_id": str(ObjectId()), "intervals": []}},
                upsert=True,
            )
        except DuplicateKey:
            pass  # a concurrent first claim created it

    async def claim(
        self,
        org: str,
        resource: str,
        *,
        owner: str,
        start: datetime,
        end: datetime,
        padding: timedelta = timedelta(0),
        expires_at: datetime | None = None,
        ignore_owner: str | None = None,
        conflict_message: str = "That time is already taken.",
    ) -> str:
        """Atomically adds [start, end) unless a live interval lies within ``padding`` of it.
        ``ignore_owner`` lets a session being moved overlap its own old interval."""
        now = self._clock()
        clash: dict[str, Any] = {
            "start": {"$lt": end + padding},
            "end": {"$gt": start - padding},
            **_live(now),
        }
        if ignore_owner is not None:
            clash["owner"] = {"$ne": ignore_owner}
        claim_id = str(ObjectId())
        interval = {
            "claimId": claim_id,
            "owner": owner,
            "start": start,
            "end": end,
            "expiresAt": expires_at,
            "claimedAt": now,
        }
        done: list[str] = []
        try:
            for bucket in buckets(start - padding, end + padding):
                if not await self._push(org, resource, bucket, clash, interval):
                    raise Conflict(conflict_message)
                done.append(bucket)
        except BaseException:
            for bucket in done:  # a claim is all its weeks or none
                await self._pull(org, resource, bucket, {"claimId": claim_id})
            raise
        register(f"claim on {resource}", lambda: self.release(org, resource, claim_id=claim_id))
        return claim_id

    async def _push(
        self,
        org: str,
        resource: str,
        bucket: str,
        clash: dict[str, Any],
        interval: dict[str, Any],
    ) -> bool:
        where = {
            "resource": resource,
            "bucket": bucket,
            "intervals": {"$not": {"$elemMatch": clash}},
        }
        push = {"$push": {"intervals": interval}}
        if await self._col.update_one(org, where, push):
            return True
        if await self._col.count(org, {"resource": resource, "bucket": bucket}):
            return False  # the week exists and holds a clash
        # The week's first claim: make its document, then claim as usual. (Checking for the
        # document only after a miss keeps every later claim to one write.)
        await self._ensure(org, resource, bucket)
        return bool(await self._col.update_one(org, where, push))

    async def _pull(self, org: str, resource: str, bucket: str, which: dict[str, Any]) -> None:
        await self._col.update_one(
            org, {"resource": resource, "bucket": bucket}, {"$pull": {"intervals": which}}
        )

    async def _holding(
        self, org: str, resource: str, which: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The resource's week documents holding an interval that matches ``which``."""
        return await self._col.find(org, {"resource": resource, "intervals": {"$elemMatch": which}})

    async def set_expiry(
        self, org: str, resource: str, claim_id: str, expires_at: datetime | None
    ) -> bool:
        """Confirms a claim (None: holds until released) or turns it into a timed hold.
        Only a claim that is still live can be changed: an expired one may already have been
        overtaken, and must be claimed again instead."""
        live = {"claimId": claim_id, **_live(self._clock())}
        changed = False
        for doc in await self._holding(org, resource, live):
            previous = next(
                (i.get("expiresAt") for i in doc["intervals"] if i["claimId"] == claim_id), None
            )
            matched = await self._col.update_one(
                org,
                {"_id": doc["_id"], "resource": resource, "intervals": {"$elemMatch": live}},
                {"$set": {"intervals.$.expiresAt": expires_at}},
            )
            if matched:
                changed = True
                register(
                    f"expiry of a claim on {resource}",
                    lambda doc_id=doc["_id"], before=previous: self._col.update_one(
                        org,
                        {"_id": doc_id, "intervals.claimId": claim_id},
                        {"$set": {"intervals.$.expiresAt": before}},
                    ),
                )
        return changed

    async def release(
        self,
        org: str,
        resource: str,
        *,
        claim_id: str | None = None,
        owner: str | None = None,
        keep: str | None = None,
    ) -> None:
        """Drops one claim, or every claim of ``owner`` except ``keep``, in every week."""
        which: dict[str, Any] = {"claimId": claim_id} if claim_id else {"owner": owner}
        if keep is not None:
            which["claimId"] = {"$ne": keep}
        for doc in await self._holding(org, resource, which):
            released = [
                i
                for i in doc["intervals"]
                if (i["claimId"] == claim_id if claim_id else i["owner"] == owner)
                and (keep is None or i["claimId"] != keep)
            ]
            await self._col.update_one(
                org, {"_id": doc["_id"], "resource": resource}, {"$pull": {"intervals": which}}
            )
            if released and in_operation():
                register(
                    f"release on {resource}",
                    lambda doc_id=doc["_id"], back=released: self._col.update_one(
                        org,
                        {"_id": doc_id, "resource": resource},
                        {"$push": {"intervals": {"$each": back}}},
                    ),
                )

    async def claims_of(self, org: str, resource: str, owner: str) -> list[Interval]:
        seen: dict[str, Interval] = {}
        for doc in await self._holding(org, resource, {"owner": owner}):
            for raw in doc["intervals"]:
                if raw["owner"] == owner:
                    seen.setdefault(raw["claimId"], Interval.from_doc(raw))
        return sorted(seen.values(), key=lambda i: i.start)

    async def prune(self, org: str, resource: str) -> None:
        """Drops the weeks that ended long ago (nothing can be booked in the past)."""
        cutoff = bucket_of(self._clock() - _KEEP_PAST)
        old = await self._col.find(org, {"resource": resource, "bucket": {"$lt": cutoff}})
        for doc in old:
            await self._col.delete_one(org, {"_id": doc["_id"], "resource": resource})

    async def busy(
        self, org: str, resources: Sequence[str], start: datetime, end: datetime
    ) -> list[Interval]:
        """Live intervals of any of ``resources`` overlapping [start, end): one read."""
        now = self._clock()
        docs = await self._col.find(
            org, {"resource": {"$in": list(resources)}, "bucket": {"$in": buckets(start, end)}}
        )
        seen: dict[tuple[str, str], Interval] = {}
        for doc in docs:
            for raw in doc.get("intervals", []):
                interval = Interval.from_doc(raw)
                if interval.live(now) and interval.overlaps(start, end):
                    seen.setdefault((doc["resource"], interval.claim_id), interval)
        return sorted(seen.values(), key=lambda i: i.start)
