"""The payments of a session awaiting payment: creating one, voiding the open ones, and
flagging money that no session can use for a refund.

A session in PENDING_PAYMENT points at its current payment (``paymentId``); a retry gives it a
new one, so one session can own several payments (``payment.sessionId``). Whichever of them
succeeds first while the session still awaits payment schedules it (one conditional update on
the session's status decides); the others are *voided*.

Voiding is the system closing a payment nobody should pay any more (its session was paid by
another payment, was cancelled, lapsed, or the payment was replaced by a retry): it becomes
FAILED with the reason, and ``internal.void`` records that the failure was ours, not the
provider's. The difference matters when the provider reports a success anyway (the guardian
paid an old link): money was taken, so the success is recorded -- PAID, and ``refundDue``
unless it can still schedule the session -- whereas a failure the provider itself reported is
final. Every write here registers its inverse with the operation's ``undo_on_failure``.
"""

from __future__ import annotations

import logging
from typing import Any

from app.platform.undo import register
from app.tutoring import changes
from app.tutoring.scheduling.context import Scheduling
from app.tutoring.settings import TutoringSettings

log = logging.getLogger(__name__)

OPEN = ("pending", "processing")
VOID = "internal.void"  # set on payments the system closed (see above); no mask shows it


def session_price(settings: TutoringSettings, minutes: int) -> float:
    """What a session of ``minutes`` costs without a pack."""
    return round(settings.sessionPricePerHour * minutes / 60, 2)


async def create_session_payment(
    ctx: Scheduling, session_id: str, guardian_id: str, amount: float, currency: str
) -> str:
    """A pending payment for a session awaiting payment (the booking's, or a retry's)."""
    payment = await ctx.domain.create(
        "payment",
        {},
        server_fields={
            "status": "pending",
            "guardianId": guardian_id,
            "amount": amount,
            "currency": currency,
            "sessionId": session_id,
            "refundDue": False,
        },
    )
    return payment.id


def revert_payment(
    ctx: Scheduling,
    payment_id: str,
    before: dict[str, Any],
    keys: tuple[str, ...],
    condition: dict[str, Any],
    *,
    void: bool | None = None,
) -> None:
    """If the operation fails later, puts ``keys`` of the payment's data back as they were
    in ``before`` (and its void mark, when ``void`` is not None), provided ``condition``
    still holds. One update, so data and mark never disagree."""
    restored = {f"data.{k}": before[k] for k in keys if before.get(k) is not None}
    absent = {f"data.{k}": "" for k in keys if before.get(k) is None}
    if void:
        restored[VOID] = True
    elif void is False:
        absent[VOID] = ""
    update: dict[str, dict[str, Any]] = {}
    if restored:
        update["$set"] = restored
    if absent:
        update["$unset"] = absent

    async def revert() -> None:
        await ctx.domain.atomic_update("payment", payment_id, condition=condition, update=update)

    register(f"payment {payment_id}", revert)


async def void_payment(
    ctx: Scheduling, payment_id: str, before: dict[str, Any], reason: str
) -> bool:
    """Closes an open payment (see the module's docstring); False if it was no longer open."""
    voided = await ctx.domain.atomic_update(
        "payment",
        payment_id,
        event=changes.FAILED,
        condition={"data.status": {"$in": list(OPEN)}},
        update={
            "$set": {
                "data.status": "failed",
                "data.failedAt": ctx.now,
                "data.failureReason": reason,
                VOID: True,
            }
        },
    )
    if voided is None:
        return False
    keys = ("status", "failedAt", "failureReason")
    revert_payment(ctx, payment_id, before, keys, {"data.status": "failed"}, void=False)
    return True


async def void_open_payments(
    ctx: Scheduling, session_id: str, reason: str, keep: str | None = None
) -> None:
    """Voids every open payment of the session except ``keep``: nobody is asked to pay for
    a session that is paid, cancelled or lapsed."""
    page = await ctx.domain.query(
        "payment", where={"sessionId": session_id, "status": {"in": list(OPEN)}}, first=100
    )
    for payment in page.items:
        if payment.id != keep:
            await void_payment(ctx, payment.id, dict(payment.data), reason)


async def close_for_cancelled(ctx: Scheduling, session_id: str, reason: str) -> list[str]:
    """A cancelled (or lapsed) session keeps no money and asks for none: its open payments
    are voided, and a paid one (the guardian paid, then the session was cancelled) is
    flagged for a refund. Returns the ids of the payments flagged here."""
    page = await ctx.domain.query("payment", where={"sessionId": session_id}, first=100)
    flagged = []
    for payment in page.items:
        data = dict(payment.data)
        if data.get("status") in OPEN:
            await void_payment(ctx, payment.id, data, f"{reason} before payment.")
        elif data.get("status") == "paid" and not data.get("refundDue"):
            if await flag_refund(ctx, payment.id, data, f"{reason} after it was paid."):
                flagged.append(payment.id)
    return flagged


async def flag_refund(
    ctx: Scheduling, payment_id: str, before: dict[str, Any], reason: str
) -> bool:
    """Marks a paid payment whose money no session uses: admins find it with ``payments(
    filter: {refundDue: true})``. The first reason stays; False if it was flagged already."""
    flagged = await ctx.domain.atomic_update(
        "payment",
        payment_id,
        condition={"data.status": "paid", "data.refundDue": {"$ne": True}},
        update={"$set": {"data.refundDue": True, "data.refundReason": reason}},
    )
    if flagged is None:
        return False
    keys = ("refundDue", "refundReason")
    revert_payment(ctx, payment_id, before, keys, {"data.refundDue": True})
    return True


def log_refund_due(payment_id: str, session_id: str) -> None:
    """Ids only (the log line carries the organization): amounts and reasons are the
    guardian's business, not the log's."""
    log.warning("refund due: payment %s of session %s", payment_id, session_id)
