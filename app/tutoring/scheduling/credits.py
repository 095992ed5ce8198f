"""Session credits on an entitlement: reserved at booking, consumed once at completion.

Bookkeeping lives on the entitlement document, outside its entity data: ``internal.reserved``
and ``internal.consumed`` list session ids. Every change is one conditional update, so two
bookings cannot both take the last credit and a session is never charged twice, whatever
runs concurrently; ``remainingCredits``, ``usedCredits``, ``availableCredits`` and ``status``
change in the same update as the lists.

``availableCredits`` (remaining minus reserved: what a guardian can still book) is a stored
counter moved by those same updates, not a value computed when read. Computing it would need
the hidden ``internal`` list at every read, that is a derived-field hook in the generic entity
service (which knows no credit) or an extra read per pack in the transport. Stored, it is an
ordinary server-owned field: masks decide who sees it, and it is exact under any concurrency
because it changes in the very update that changes the reservation list or the remaining
count, under the same condition. Packs written before the counter existed get it once, from
one read whose values are part of the write's condition (``_count_available``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.undo import register
from app.tutoring import changes
from app.tutoring.errors import InsufficientCredits

_RESERVED = "internal.reserved"
_CONSUMED = "internal.consumed"
_AVAILABLE = "data.availableCredits"
_FREE_CREDIT = {
    "$expr": {"$lt": [{"$size": {"$ifNull": ["$internal.reserved", []]}}, "$data.remainingCredits"]}
}
# Updates that move the counter apply only to packs that have it (see ``_count_available``):
# an $inc on a missing field would start it from zero.
_COUNTED = {_AVAILABLE: {"$exists": True}}


async def reserve(
    domain: ActorEntities, entitlement_id: str, session_id: str, start: datetime
) -> None:
    """Holds one credit for ``session_id`` while remaining credits exceed those reserved."""

    async def attempt() -> Entity | None:
        return await domain.atomic_update(
            "entitlement",
            entitlement_id,
            condition={
                "data.status": "active",
                "data.expiresAt": {"$not": {"$lte": start}},
                _RESERVED: {"$ne": session_id},
                **_FREE_CREDIT,
                **_COUNTED,
            },
            update={"$push": {_RESERVED: session_id}, "$inc": {_AVAILABLE: -1}},
            event=changes.RESERVED,
        )

    done = await attempt()
    if done is None and await _count_available(domain, entitlement_id):
        done = await attempt()
    if done is None:
        raise InsufficientCredits(
            "This pack has no unreserved credit left for that date (its remaining credits are "
            "held by upcoming sessions, or it is used up, expired or cancelled)."
        )
    register("credit reservation", lambda: release(domain, entitlement_id, session_id))


async def release(domain: ActorEntities, entitlement_id: str, session_id: str) -> None:
    async def attempt() -> Entity | None:
        return await domain.atomic_update(
            "entitlement",
            entitlement_id,
            condition={_RESERVED: session_id, **_COUNTED},
            update={"$pull": {_RESERVED: session_id}, "$inc": {_AVAILABLE: 1}},
            event=changes.RELEASED,
        )

    released = await attempt()
    if released is None and await _count_available(domain, entitlement_id):
        released = await attempt()
    if released is not None:
        register("credit release", lambda: _reserve_again(domain, entitlement_id, session_id))


async def _reserve_again(domain: ActorEntities, entitlement_id: str, session_id: str) -> None:
    """Undoes a release: the credit was held for this session a moment ago."""
    await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={_RESERVED: {"$ne": session_id}, **_COUNTED},
        update={"$push": {_RESERVED: session_id}, "$inc": {_AVAILABLE: -1}},
    )


async def consume(domain: ActorEntities, entitlement_id: str, session_id: str) -> bool:
    """Charges one credit for ``session_id``, at most once. Returns True when this call
    charged it, False when it had already been charged; ``INSUFFICIENT_CREDITS`` when no
    credit remains. At zero the pack becomes exhausted in the same update. The update is
    conditional on the count it read and on whether the session held a reservation (a held
    credit leaves ``availableCredits`` as it is, an unheld one takes one from it), so a
    concurrent change makes it read and try again."""
    for _ in range(8):
        current = await domain.internal_state("entitlement", entitlement_id)
        if current is None or session_id in current["internal"].get("consumed", []):
            return False
        remaining = current["data"].get("remainingCredits", 0)
        if not isinstance(remaining, int) or remaining < 1:
            raise InsufficientCredits("This pack has no credit left to charge this session.")
        if "availableCredits" not in current["data"]:
            await _count_available(domain, entitlement_id)
            continue
        was_reserved = session_id in current["internal"].get("reserved", [])
        charge: dict[str, Any] = {
            "$inc": {
                "data.remainingCredits": -1,
                "data.usedCredits": 1,
                _AVAILABLE: 0 if was_reserved else -1,
            },
            "$pull": {_RESERVED: session_id},
            "$push": {_CONSUMED: session_id},
        }
        if remaining == 1:
            charge["$set"] = {"data.status": "exhausted"}
        charged = await domain.atomic_update(
            "entitlement",
            entitlement_id,
            condition={
                _CONSUMED: {"$ne": session_id},
                "data.remainingCredits": remaining,
                _RESERVED: session_id if was_reserved else {"$ne": session_id},
                **_COUNTED,
            },
            update=charge,
            event=changes.CONSUMED,
        )
        if charged is not None:
            register(
                "credit charge",
                lambda held=was_reserved: _uncharge(domain, entitlement_id, session_id, held),
            )
            return True
    raise InsufficientCredits("The pack is being charged concurrently; try again.")


async def _uncharge(
    domain: ActorEntities, entitlement_id: str, session_id: str, was_reserved: bool
) -> None:
    await refund(domain, entitlement_id, session_id)
    if was_reserved:
        await _reserve_again(domain, entitlement_id, session_id)


async def refund(domain: ActorEntities, entitlement_id: str, session_id: str) -> None:
    """Gives back a charge made for this session (``consume`` counted the pack first)."""
    undo: dict[str, Any] = {
        "$inc": {"data.remainingCredits": 1, "data.usedCredits": -1, _AVAILABLE: 1},
        "$pull": {_CONSUMED: session_id},
    }
    reopened = await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={_CONSUMED: session_id, "data.status": "exhausted"},
        update={**undo, "$set": {"data.status": "active"}},
    )
    if reopened is None:
        await domain.atomic_update(
            "entitlement", entitlement_id, condition={_CONSUMED: session_id}, update=undo
        )


async def _count_available(domain: ActorEntities, entitlement_id: str) -> bool:
    """Gives a pack written before ``availableCredits`` existed its counter: remaining minus
    reserved from one read, written only while both are still what was read (so the value
    is exact whatever ran meanwhile). True when this call wrote it; False when the pack
    already had one, is gone, or changed meanwhile (the caller's retry reads again). Not
    taken back when the operation around it fails: the count is true either way."""
    current = await domain.internal_state("entitlement", entitlement_id)
    if current is None or "availableCredits" in current["data"]:
        return False
    remaining = current["data"].get("remainingCredits")
    if not isinstance(remaining, int):
        return False
    held = len(current["internal"].get("reserved", []))
    same_holds: dict[str, Any] = (
        {_RESERVED: {"$size": held}}
        if held
        else {"$or": [{_RESERVED: {"$exists": False}}, {_RESERVED: {"$size": 0}}]}
    )
    counted = await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={
            _AVAILABLE: {"$exists": False},
            "data.remainingCredits": remaining,
            **same_holds,
        },
        update={"$set": {_AVAILABLE: remaining - held}},
    )
    return counted is not None
