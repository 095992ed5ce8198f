"""Recording what the payment provider reported (the integration comes in a later phase).

A payment moves once, from pending (or processing) to paid or failed. A failure the provider
reported is final: the guardian pays again through ``retrySessionPayment`` (``retry.py``),
which gives the session a new payment. A payment the system voided (see
``payment_records``) can still be reported paid: the money was taken.

Success of any payment of a session schedules the session exactly once: while the session
awaits payment, one conditional update on its status lets exactly one payment confirm it
(that payment becomes its ``paymentId``; the session's other open payments are voided). A
success that finds the session no longer awaiting payment -- paid by another payment,
cancelled, lapsed -- is recorded as paid with ``refundDue``, for an admin to refund.
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
from app.tutoring.scheduling import payment_records as records
from app.tutoring.scheduling.context import Scheduling, scheduling
from app.tutoring.scheduling.lifecycle import Moment, authorize
from app.tutoring.scheduling.transitions import lapse_hold

_NOW = object()
_VOIDED = {"data.status": "failed", records.VOID: True}


async def _settle(
    entities: ActorEntities, payment_id: str, outcome: str, fields: dict[str, Any]
) -> tuple[Scheduling, dict[str, Any], bool]:
    """Moves the payment to ``outcome`` and says whether this call moved it; repeating the
    outcome already recorded is a no-op. Called inside the operation's ``undo_on_failure``:
    if what follows fails, the payment is as it was, so the provider's retry of the same
    report can complete it."""
    entities.access.require_resource(PAYMENT_OUTCOME_RESOURCE, Action.UPDATE)
    await entities.require("payment", payment_id)
    ctx = await scheduling(entities, f"payment.{outcome}")
    stored = await ctx.domain.internal_state("payment", payment_id) or {}
    before, was_void = dict(stored.get("data", {})), bool(stored.get("internal", {}).get("void"))
    values = {
        f"data.{k}": (ctx.now if v is _NOW else v) for k, v in fields.items() if v is not None
    }
    is_open: dict[str, Any] = {"data.status": {"$in": list(records.OPEN)}}
    update: dict[str, dict[str, Any]] = {"$set": {"data.status": outcome, **values}}
    keys = ["status", *(k.removeprefix("data.") for k in values)]
    if outcome == "paid":  # a voided payment may still be paid: the money was taken
        condition = {"$or": [is_open, _VOIDED]}
        update["$unset"] = {"data.failedAt": "", "data.failureReason": "", records.VOID: ""}
        keys += ["failedAt", "failureReason"]
    else:
        condition = is_open
    settled = await ctx.domain.atomic_update(
        "payment",
        payment_id,
        condition=condition,
        update=update,
        event=outcome,  # paid, failed
    )
    if settled is not None:
        condition = {"data.status": outcome}
        records.revert_payment(ctx, payment_id, before, tuple(keys), condition, void=was_void)
        return ctx, dict(settled.data), True
    payment = await ctx.state("payment", payment_id)
    if payment.get("status") != outcome:
        raise InvalidTransition(_cannot(payment, outcome))
    return ctx, payment, False


def _cannot(payment: dict[str, Any], outcome: str) -> str:
    status = payment.get("status")
    if status == "failed" and outcome == "paid":
        if payment.get("sessionId"):
            return (
                "This payment failed and cannot succeed afterwards. To pay for the session "
                f'again, call retrySessionPayment(id: "{payment["sessionId"]}"): the session '
                "gets a new payment, which is then paid and recorded."
            )
        return (
            "This payment failed and cannot succeed afterwards. To pay for the pack again, "
            "create a new payment for it (createPayment with its entitlementId)."
        )
    return f"A {status} payment cannot become {outcome}."


async def record_payment_succeeded(
    entities: ActorEntities, payment_id: str, provider_reference: str | None = None
) -> Entity:
    """Idempotent: recording the same success twice changes nothing more."""
    fields = {"paidAt": _NOW, "providerReference": provider_reference}
    refund_due = False
    async with undo_on_failure():
        ctx, payment, moved = await _settle(entities, payment_id, "paid", fields)
        session_id = payment.get("sessionId")
        if moved and session_id:
            refund_due = await _count_for_session(ctx, session_id, payment_id, payment)
    if refund_due:
        records.log_refund_due(payment_id, session_id)
    return await entities.require("payment", payment_id)


class _SlotTaken(Exception):
    """The hold had ended and someone else holds the session's time now."""


async def _count_for_session(
    ctx: Scheduling, session_id: str, payment_id: str, payment: dict[str, Any]
) -> bool:
    """Schedules the session with this payment if it still awaits payment; otherwise (or if
    another payment, a cancellation or a lapse got there first) flags the payment for a
    refund and returns True."""
    session = await ctx.state("session", session_id)
    if session.get("status") == "pending_payment":
        try:
            async with undo_on_failure():  # a lost slot takes back the confirmation alone
                if await _confirm_session(ctx, session_id, session, payment_id):
                    return False
        except _SlotTaken:
            why = "The session's slot was taken after its payment hold ended."
            flagged = await records.flag_refund(ctx, payment_id, payment, why)
            await lapse_hold(
                ctx.domain,
                session_id,
                "The slot was taken after the payment hold ended; the payment is to be "
                "refunded or the session rebooked.",
            )
            return flagged
        session = await ctx.state("session", session_id)  # it moved on meanwhile
    why = _why_not_counted(session, payment_id)
    return await records.flag_refund(ctx, payment_id, payment, why)


def _why_not_counted(session: dict[str, Any], payment_id: str) -> str:
    status = session.get("status")
    if status == "cancelled":
        return "The session was cancelled (or its payment hold lapsed) before this payment."
    other = session.get("paymentId")
    if other and other != payment_id:
        return f"The session was already paid by payment {other}."
    return f"The session ({str(status).upper()}) did not await a payment."


async def _confirm_session(
    ctx: Scheduling, session_id: str, session: dict[str, Any], payment_id: str
) -> bool:
    """The status moves first (the one conditional update that decides between racing
    payments, lapses and cancellations), then the slot is made the session's for good.
    False when the session had moved on; ``_SlotTaken`` when its time is gone."""
    authorize("confirm_payment", ctx.domain.actor.roles, Moment(session, ctx.now, ctx.settings))
    held = await ctx.claims_of(session, session_id)
    confirmed = await ctx.domain.atomic_update(
        "session",
        session_id,
        condition={"data.status": "pending_payment"},
        update={
            "$set": {"data.status": "scheduled", "data.paymentId": payment_id},
            "$unset": {"data.holdExpiresAt": ""},
        },
        event=changes.PAID,
    )
    if confirmed is None:
        return False
    ctx.revert_on_failure(
        "session",
        session_id,
        session,
        ["status", "paymentId", "holdExpiresAt"],
        {"data.status": "scheduled", "data.paymentId": payment_id},
    )
    hold = session.get("holdExpiresAt")
    if not (hold is not None and hold > ctx.now and len(held) == 2 and await _keep(ctx, held)):
        end = session["startTime"] + timedelta(minutes=session["duration"])
        try:
            # The hold ended: someone may hold the slot now, so claim it again.
            claims = await ctx.claim(
                session["teacherId"], session["studentId"], session_id, session["startTime"], end,
                move=True,
            )  # fmt: skip
        except Conflict:
            raise _SlotTaken from None
        await ctx.release([c for c in held if c not in claims])
    reason = f"The session was paid by payment {payment_id}."
    await records.void_open_payments(ctx, session_id, reason, keep=payment_id)
    await schedule.session_scheduled(ctx.domain, session_id, dict(confirmed.data), ctx.settings)
    return True


async def _keep(ctx: Scheduling, held: list[tuple[str, str]]) -> bool:
    """Makes the held claims the session's for good. Only live claims can be kept: False if
    the hold ran out meanwhile (nobody could take the slot before; someone may now)."""
    kept = [await ctx.calendar.set_expiry(ctx.org, r, claim_id, None) for r, claim_id in held]
    return all(kept)


async def record_payment_failed(entities: ActorEntities, payment_id: str, reason: str) -> Entity:
    """Final for this payment. The session it was for keeps its slot until the hold ends,
    for ``retrySessionPayment``; the hold is never extended."""
    fields = {"failedAt": _NOW, "failureReason": reason}
    async with undo_on_failure():
        ctx, payment, moved = await _settle(entities, payment_id, "failed", fields)
        session_id = payment.get("sessionId")
        session = await ctx.state("session", session_id) if moved and session_id else {}
        if session.get("status") == "pending_payment" and session.get("paymentId") == payment_id:
            await _shorten_hold(ctx, session_id, session, payment_id)
    return await entities.require("payment", payment_id)


async def _shorten_hold(
    ctx: Scheduling, session_id: str, session: dict[str, Any], payment_id: str
) -> None:
    """The session keeps its slot for at most ``paymentHoldMinutes`` more, for a retry (this
    shortens the hold only when the setting was lowered since the booking; it never extends
    it)."""
    hold = ctx.now + timedelta(minutes=ctx.settings.paymentHoldMinutes)
    current = session.get("holdExpiresAt")
    if current is not None and current <= hold:
        return  # nothing to shorten
    updated = await ctx.domain.atomic_update(
        "session",
        session_id,
        condition={"data.status": "pending_payment", "data.paymentId": payment_id},
        update={"$set": {"data.holdExpiresAt": hold}},
    )
    if updated is None:
        return  # retried or settled meanwhile: this payment no longer decides the hold
    ctx.revert_on_failure(
        "session", session_id, session, ["holdExpiresAt"], {"data.status": "pending_payment"}
    )
    claims = await ctx.claims_of(session, session_id)
    for resource, claim_id in claims:
        await ctx.calendar.set_expiry(ctx.org, resource, claim_id, hold)
    if (await ctx.state("session", session_id)).get("status") == "scheduled":
        # Another payment of the session confirmed it while the claims were being shortened:
        # its confirmation made them permanent, and so must the last word here.
        await ctx.confirm(claims, None)
        return
    await schedule.session_on_hold(ctx.domain, session_id, hold)
