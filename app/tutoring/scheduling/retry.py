"""Paying again for a session awaiting payment: ``retrySessionPayment``.

Who may, and until when, is the lifecycle table's ``retry_payment`` row (the session's
guardian and admins, before the payment hold ends); whose session it is, the caller's scope.
The session gets a new pending payment of the same amount and currency and points at it. Its
current payment must have failed or still be pending: a pending one is voided (see
``payment_records``), so the guardian is not asked to pay twice; should it succeed anyway it
still schedules the session if nothing else has, and is flagged ``refundDue`` otherwise. A
payment being processed is left to finish. The hold is not extended: a retry keeps the slot
only as long as the booking did, so retrying cannot hold a teacher's time indefinitely.
"""

from __future__ import annotations

from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import Conflict
from app.platform.undo import undo_on_failure
from app.tutoring.errors import InvalidTransition
from app.tutoring.scheduling import payment_records as records
from app.tutoring.scheduling.context import Scheduling, scheduling
from app.tutoring.scheduling.lifecycle import Moment, authorize

_RETRYABLE = ("pending", "failed")


async def retry_session_payment(entities: ActorEntities, session_id: str) -> Entity:
    """The session, now pointing at its new pending payment (``paymentId``)."""
    ctx = await scheduling(entities, "payment.retry")
    await entities.require("session", session_id)
    session = await ctx.state("session", session_id)
    roles = await ctx.roles_reaching(session_id, session)
    authorize("retry_payment", roles, Moment(session, ctx.now, ctx.settings))
    current_id = session.get("paymentId")
    current = await ctx.state("payment", current_id) if current_id else {}
    status = current.get("status")
    if current_id and status not in _RETRYABLE:
        raise InvalidTransition(
            "The session's payment is being processed; wait for its outcome."
            if status == "processing"
            else f"The session's payment is {status}; there is nothing to retry."
        )
    amount = current.get("amount")
    if amount is None:
        amount = records.session_price(ctx.settings, session["duration"])
    currency = current.get("currency") or ctx.settings.currency
    async with undo_on_failure():
        guardian_id = session.get("guardianId") or current.get("guardianId")
        new_id = await records.create_session_payment(
            ctx, session_id, guardian_id, amount, currency
        )
        moved = await ctx.domain.atomic_update(
            "session",
            session_id,
            condition={"data.status": "pending_payment", "data.paymentId": current_id},
            update={"$set": {"data.paymentId": new_id}},
        )
        if moved is None:
            raise await _moved_on(ctx, session_id)
        ctx.revert_on_failure(
            "session", session_id, session, ["paymentId"], {"data.paymentId": new_id}
        )
        if status == "pending":
            reason = f"Replaced by payment {new_id} (the session's payment was retried)."
            await records.void_payment(ctx, current_id, current, reason)
    return await entities.require("session", session_id)


async def _moved_on(ctx: Scheduling, session_id: str) -> Exception:
    now: dict[str, Any] = await ctx.state("session", session_id)
    if now.get("status") != "pending_payment":
        return InvalidTransition(
            f"The session became {str(now.get('status')).upper()} meanwhile; "
            "it no longer awaits a payment."
        )
    return Conflict("The session's payment was retried meanwhile; reload the session.")
