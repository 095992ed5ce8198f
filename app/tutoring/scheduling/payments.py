"""Recording a payment's outcome (the provider integration comes in a later phase).

A payment moves once, from pending (or processing) to paid or failed; a failed payment cannot
later succeed (the guardian pays again with a new payment). When it pays for a session held in
PENDING_PAYMENT, success confirms the session; failure leaves it unpayable and lets its slot go
when the organization's hold time is over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import Conflict
from app.platform.permissions import Action
from app.platform.undo import undo_on_failure
from app.tutoring import changes
from app.tutoring.errors import InvalidTransition
from app.tutoring.jobs import schedule
from app.tutoring.roles import PAYMENT_OUTCOME_RESOURCE
from app.tutoring.scheduling.context import (
    Scheduling,
    scheduling,
    student_resource,
    teacher_resource,
)
from app.tutoring.scheduling.lifecycle import Moment, authorize
from app.tutoring.scheduling.transitions import lapse_hold


async def _settle(
    entities: ActorEntities, payment_id: str, outcome: str, fields: dict[str, Any]
) -> tuple[Scheduling, dict[str, Any]]:
    """Moves an open payment to ``outcome``; repeating the same outcome is a no-op. Called
    inside the operation's ``undo_on_failure``: if what follows fails, the payment is open
    again, so the provider's retry of the same report can complete it."""
    entities.access.require_resource(PAYMENT_OUTCOME_RESOURCE, Action.UPDATE)
    await entities.require("payment", payment_id)
    ctx = await scheduling(entities, f"payment.{outcome}")
    before = await ctx.state("payment", payment_id)
    values = {
        f"data.{k}": (ctx.now if v is _NOW else v) for k, v in fields.items() if v is not None
    }
    settled = await ctx.domain.atomic_update(
        "payment",
        payment_id,
        condition={"data.status": {"$in": ["pending", "processing"]}},
        update={"$set": {"data.status": outcome, **values}},
        event=outcome,  # paid or failed
    )
    if settled is not None:
        keys = ["status", *(k.removeprefix("data.") for k in values)]
        ctx.revert_on_failure("payment", payment_id, before, keys, {"data.status": outcome})
        return ctx, {**before, **settled.data}
    payment = await ctx.state("payment", payment_id)
    if payment.get("status") != outcome:
        raise InvalidTransition(
            f"A {payment.get('status')} payment cannot become {outcome}; create a new payment "
            "for the session or pack instead."
        )
    return ctx, payment


_NOW = object()


async def record_payment_succeeded(
    entities: ActorEntities, payment_id: str, provider_reference: str | None = None
) -> Entity:
    """Idempotent: recording the same success twice changes nothing more."""
    fields = {"paidAt": _NOW, "providerReference": provider_reference}
    async with undo_on_failure():
        ctx, payment = await _settle(entities, payment_id, "paid", fields)
        if payment.get("sessionId"):
            await _confirm_session(ctx, payment["sessionId"], payment_id)
    return await entities.require("payment", payment_id)


async def _confirm_session(ctx: Scheduling, session_id: str, payment_id: str) -> None:
    session = await ctx.state("session", session_id)
    if session.get("status") != "pending_payment" or session.get("paymentId") != payment_id:
        return  # not this payment's session to confirm (or already confirmed)
    authorize("confirm_payment", ctx.domain.actor.roles, Moment(session, ctx.now, ctx.settings))
    held = await ctx.claims_of(session, session_id)
    hold = session.get("holdExpiresAt")
    if hold is not None and hold > ctx.now and len(held) == 2:
        claims = held  # still held: nobody can have taken the slot, keep it for good
    else:
        end = session["startTime"] + timedelta(minutes=session["duration"])
        try:
            # The hold ended: someone may hold the slot now, so claim it again.
            claims = await ctx.claim(
                session["teacherId"], session["studentId"], session_id, session["startTime"], end,
                move=True,
            )  # fmt: skip
        except Conflict:
            await lapse_hold(
                ctx.domain,
                session_id,
                "The slot was taken after the payment hold ended; the payment is to be "
                "refunded or the session rebooked.",
            )
            return
        await ctx.release([c for c in held if c not in claims])
    confirmed = await ctx.domain.atomic_update(
        "session",
        session_id,
        condition={"data.status": "pending_payment"},
        update={"$set": {"data.status": "scheduled"}, "$unset": {"data.holdExpiresAt": ""}},
        event=changes.PAID,
    )
    if confirmed is None:
        return
    ctx.revert_on_failure(
        "session", session_id, session, ["status", "holdExpiresAt"], {"data.status": "scheduled"}
    )
    await ctx.confirm(claims, None)
    await schedule.session_scheduled(ctx.domain, session_id, dict(confirmed.data), ctx.settings)


async def record_payment_failed(entities: ActorEntities, payment_id: str, reason: str) -> Entity:
    fields = {"failedAt": _NOW, "failureReason": reason}
    async with undo_on_failure():
        ctx, payment = await _settle(entities, payment_id, "failed", fields)
        session_id = payment.get("sessionId")
        session = await ctx.state("session", session_id) if session_id else {}
        if session.get("status") == "pending_payment" and session.get("paymentId") == payment_id:
            await _shorten_hold(ctx, session_id, session)
    return await entities.require("payment", payment_id)


async def _shorten_hold(ctx: Scheduling, session_id: str, session: dict[str, Any]) -> None:
    """The session keeps its slot for at most ``paymentHoldMinutes`` more, for a retry."""
    hold = ctx.now + timedelta(minutes=ctx.settings.paymentHoldMinutes)
    if session.get("holdExpiresAt"):
        hold = min(hold, session["holdExpiresAt"])
    updated = await ctx.domain.atomic_update(
        "session",
        session_id,
        condition={"data.status": "pending_payment"},
        update={"$set": {"data.holdExpiresAt": hold}},
    )
    if updated is not None:
        ctx.revert_on_failure(
            "session", session_id, session, ["holdExpiresAt"], {"data.status": "pending_payment"}
        )
    for resource in (
        teacher_resource(session["teacherId"]),
        student_resource(session["studentId"]),
    ):
        for claim in await ctx.calendar.claims_of(ctx.org, resource, session_id):
            await ctx.calendar.set_expiry(ctx.org, resource, claim.claim_id, hold)
    await schedule.session_on_hold(ctx.domain, session_id, hold)
