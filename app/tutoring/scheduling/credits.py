"""Session credits on an entitlement: reserved at booking, consumed once at completion.

Bookkeeping lives on the entitlement document, outside its entity data: ``internal.reserved``
and ``internal.consumed`` list session ids. Every change is one conditional update, so two
bookings cannot both take the last credit and a session is never charged twice, whatever
runs concurrently; ``remainingCredits``, ``usedCredits`` and ``status`` change in the same
update as the lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.platform.entities import ActorEntities
from app.platform.undo import register
from app.tutoring import changes
from app.tutoring.errors import InsufficientCredits

_RESERVED = "internal.reserved"
_CONSUMED = "internal.consumed"
_FREE_CREDIT = {
    "$expr": {"$lt": [{"$size": {"$ifNull": ["$internal.reserved", []]}}, "$data.remainingCredits"]}
}


async def reserve(
    domain: ActorEntities, entitlement_id: str, session_id: str, start: datetime
) -> None:
    """Holds one credit for ``session_id`` while remaining credits exceed those reserved."""
    done = await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={
            "data.status": "active",
            "data.expiresAt": {"$not": {"$lte": start}},
            _RESERVED: {"$ne": session_id},
            **_FREE_CREDIT,
        },
        update={"$push": {_RESERVED: session_id}},
        event=changes.RESERVED,
    )
    if done is None:
        raise InsufficientCredits(
            "This pack has no unreserved credit left for that date (its remaining credits are "
            "held by upcoming sessions, or it is used up, expired or cancelled)."
        )
    register("credit reservation", lambda: release(domain, entitlement_id, session_id))


async def release(domain: ActorEntities, entitlement_id: str, session_id: str) -> None:
    released = await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={_RESERVED: session_id},
        update={"$pull": {_RESERVED: session_id}},
        event=changes.RELEASED,
    )
    if released is not None:
        register("credit release", lambda: _reserve_again(domain, entitlement_id, session_id))


async def _reserve_again(domain: ActorEntities, entitlement_id: str, session_id: str) -> None:
    """Undoes a release: the credit was held for this session a moment ago."""
    await domain.atomic_update(
        "entitlement",
        entitlement_id,
        condition={_RESERVED: {"$ne": session_id}},
        update={"$push": {_RESERVED: session_id}},
    )


async def consume(domain: ActorEntities, entitlement_id: str, session_id: str) -> bool:
    """Charges one credit for ``session_id``, at most once. Returns True when this call
    charged it, False when it had already been charged; ``INSUFFICIENT_CREDITS`` when no
    credit remains. At zero the pack becomes exhausted in the same update. The update is
    conditional on the count it read, so a concurrent charge makes it read and try again."""
    for _ in range(8):
        current = await domain.internal_state("entitlement", entitlement_id)
        if current is None or session_id in current["internal"].get("consumed", []):
            return False
        remaining = current["data"].get("remainingCredits", 0)
        if not isinstance(remaining, int) or remaining < 1:
            raise InsufficientCredits("This pack has no credit left to charge this session.")
        charge: dict[str, Any] = {
            "$inc": {"data.remainingCredits": -1, "data.usedCredits": 1},
            "$pull": {_RESERVED: session_id},
            "$push": {_CONSUMED: session_id},
        }
        if remaining == 1:
            charge["$set"] = {"data.status": "exhausted"}
        charged = await domain.atomic_update(
            "entitlement",
            entitlement_id,
            condition={_CONSUMED: {"$ne": session_id}, "data.remainingCredits": remaining},
            update=charge,
            event=changes.CONSUMED,
        )
        if charged is not None:
            was_reserved = session_id in current["internal"].get("reserved", [])
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
    """Gives back a charge made for this session."""
    undo: dict[str, Any] = {
        "$inc": {"data.remainingCredits": 1, "data.usedCredits": -1},
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
