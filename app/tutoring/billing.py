"""Creating payments and packs: the server-owned fields start where the business says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.undo import undo_on_failure
from app.tutoring.jobs import schedule
from app.tutoring.settings import load_settings


async def create_payment(entities: ActorEntities, data: Mapping[str, Any]) -> Entity:
    """A payment starts pending (and owes no refund); only the payment domain operations
    move it on."""
    return await entities.create(
        "payment", data, server_fields={"status": "pending", "refundDue": False}
    )


async def create_entitlement(entities: ActorEntities, data: Mapping[str, Any]) -> Entity:
    """A pack starts with all its credits. One bought with a payment that has not succeeded
    cannot be booked against until it does (checked at booking)."""
    total = data.get("totalCredits")
    settings = await load_settings(entities.service.store, entities.actor.organization_id)
    domain = await entities.service.for_actor(
        entities.actor.acting_for("entitlement.created"), entities.access.state
    )
    async with undo_on_failure():  # a pack without its expiry jobs is taken back
        pack = await entities.create(
            "entitlement",
            data,
            server_fields={
                "remainingCredits": total,
                "availableCredits": total,
                "usedCredits": 0,
                "status": "active",
            },
        )
        expires = (await domain.internal_state("entitlement", pack.id) or {"data": {}})["data"]
        await schedule.entitlement_created(domain, pack.id, expires.get("expiresAt"), settings)
    return pack
