"""Race-free interval claims on a named resource (a teacher's or a student's time).

Each (organization, resource) has one document holding its busy intervals. A claim is one
conditional update: "push this interval if no live interval overlaps it" (with padding on
both sides for buffers). MongoDB applies a single-document update atomically, so of any set of
overlapping claims racing each other -- in one process or across many API processes -- exactly
the first to reach the document succeeds and the rest match nothing and get ``CONFLICT``.

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
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from app.platform.clock import Clock, system_clock
from app.platform.errors import Conflict
from app.platform.store import DuplicateKey, IndexSpec, Store
from app.platform.undo import in_operation, register

CALENDARS_COLLECTION = "calendars"
CALENDAR_INDEXES = (
    IndexSpec(CALENDARS_COLLECTION, (("organizationId", 1), ("resource", 1)), unique=True),
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


class ResourceCalendar:
    def __init__(self, store: Store, *, clock: Clock = system_clock) -> None:
        self._col = store.collection(CALENDARS_COLLECTION)
        self._clock = clock

    async def _ensure(self, org: str, resource: str) -> None:
        try:
            await self._col.update_one(
                org,
                {"resource": resource},
                {"$setOnInsert": {"_id": str(ObjectId()), "resource": resource, "intervals": []}},
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
        await self._ensure(org, resource)
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
        won = await self._col.find_one_and_update(
            org,
            {"resource": resource, "intervals": {"$not": {"$elemMatch": clash}}},
            {"$push": {"intervals": interval}},
        )
        if won is None:
            raise Conflict(conflict_message)
        register(f"claim on {resource}", lambda: self.release(org, resource, claim_id=claim_id))
        return claim_id

    async def set_expiry(
        self, org: str, resource: str, claim_id: str, expires_at: datetime | None
    ) -> bool:
        """Confirms a claim (None: holds until released) or turns it into a timed hold.
        Only a claim that is still live can be changed: an expired one may already have been
        overtaken, and must be claimed again instead."""
        before = None
        if in_operation():
            before = next(
                (i for i in await self._intervals(org, resource) if i["claimId"] == claim_id), None
            )
        matched = await self._col.update_one(
            org,
            {
                "resource": resource,
                "intervals": {"$elemMatch": {"claimId": claim_id, **_live(self._clock())}},
            },
            {"$set": {"intervals.$.expiresAt": expires_at}},
        )
        if matched and before is not None:
            previous = before.get("expiresAt")
            register(
                f"expiry of a claim on {resource}",
                lambda: self._col.update_one(
                    org,
                    {"resource": resource, "intervals.claimId": claim_id},
                    {"$set": {"intervals.$.expiresAt": previous}},
                ),
            )
        return matched == 1

    async def release(
        self,
        org: str,
        resource: str,
        *,
        claim_id: str | None = None,
        owner: str | None = None,
        keep: str | None = None,
    ) -> None:
        """Drops one claim, or every claim of ``owner`` except ``keep``."""
        which: dict[str, Any] = {"claimId": claim_id} if claim_id else {"owner": owner}
        if keep is not None:
            which["claimId"] = {"$ne": keep}
        released = []
        if in_operation():
            released = [
                i
                for i in await self._intervals(org, resource)
                if (i["claimId"] == claim_id if claim_id else i["owner"] == owner)
                and (keep is None or i["claimId"] != keep)
            ]
        await self._col.update_one(org, {"resource": resource}, {"$pull": {"intervals": which}})
        if released:
            register(
                f"release on {resource}",
                lambda: self._col.update_one(
                    org, {"resource": resource}, {"$push": {"intervals": {"$each": released}}}
                ),
            )

    async def _intervals(self, org: str, resource: str) -> list[dict[str, Any]]:
        doc = await self._col.find_one(org, {"resource": resource})
        return list((doc or {}).get("intervals", []))

    async def claims_of(self, org: str, resource: str, owner: str) -> list[Interval]:
        return [
            Interval.from_doc(r)
            for r in await self._intervals(org, resource)
            if r["owner"] == owner
        ]

    async def prune(self, org: str, resource: str) -> None:
        """Drops intervals long past. Expired future claims are left: they no longer block,
        and go when their time has passed."""
        cutoff = self._clock() - _KEEP_PAST
        await self._col.update_one(
            org, {"resource": resource}, {"$pull": {"intervals": {"end": {"$lt": cutoff}}}}
        )

    async def busy(
        self, org: str, resources: Sequence[str], start: datetime, end: datetime
    ) -> list[Interval]:
        """Live intervals of any of ``resources`` overlapping [start, end): one read."""
        now = self._clock()
        docs = await self._col.find(org, {"resource": {"$in": list(resources)}})
        out = []
        for doc in docs:
            for raw in doc.get("intervals", []):
                interval = Interval.from_doc(raw)
                if interval.live(now) and interval.overlaps(start, end):
                    out.append(interval)
        return sorted(out, key=lambda i: i.start)
