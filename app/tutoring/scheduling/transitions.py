"""Moving a session through its lifecycle: cancel, start, complete, no-show, lapse.

Each operation loads the session through the caller's scope, asks the lifecycle table whether
the move is allowed now, and then makes it with one conditional update on the status it saw,
so two racing moves cannot both apply. Credits and calendar claims follow, inside
``undo_on_failure``: if any later write fails, the move and everything after it are taken
back.
"""

from __future__ import annotations

from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import BadUserInput
from app.platform.undo import undo_on_failure
from app.tutoring import changes
from app.tutoring.errors import InsufficientCredits, InvalidTransition
from app.tutoring.jobs import schedule
from app.tutoring.scheduling import credits
from app.tutoring.scheduling.context import Scheduling, scheduling
from app.tutoring.scheduling.lifecycle import Moment, authorize
from app.tutoring.scheduling.payment_records import close_for_cancelled, log_refund_due


async def _begin(
    entities: ActorEntities, session_id: str, action: str
) -> tuple[Scheduling, dict[str, Any], str]:
    ctx = await scheduling(entities, f"session.{action}")
    await entities.require("session", session_id)
    session = await ctx.state("session", session_id)
    roles = await ctx.roles_reaching(session_id, session)
    transition = authorize(action, roles, Moment(session, ctx.now, ctx.settings))
    return ctx, session, transition.target


async def _move(
    ctx: Scheduling, session_id: str, session: dict[str, Any], target: str, fields: dict[str, Any]
) -> bool:
    update: dict[str, dict[str, Any]] = {
        "$set": {
            "data.status": target,
            **{f"data.{k}": v for k, v in fields.items() if v is not None},
        }
    }
    cleared = {f"data.{k}": "" for k, v in fields.items() if v is None}
    if cleared:
        update["$unset"] = cleared
    moved = await ctx.domain.atomic_update(
        "session",
        session_id,
        condition={"data.status": session["status"], "data.startTime": session["startTime"]},
        update=update,
        event=changes.BY_STATUS.get(target, changes.UPDATED),
    )
    if moved is None:
        return False
    ctx.revert_on_failure(
        "session",
        session_id,
        session,
        ["status", *fields],
        {"data.status": target, "data.startTime": session["startTime"]},
    )
    return True


async def _changed(ctx: Scheduling, session_id: str, action: str) -> InvalidTransition:
    now = await ctx.state("session", session_id)
    return InvalidTransition(
        f"The session became {now['status']} meanwhile; it cannot be {action} now."
    )


def _who(entities: ActorEntities) -> str:
    actor = entities.actor
    return actor.on_behalf_of or actor.user_id


async def cancel_session(
    entities: ActorEntities, session_id: str, reason: str | None = None, *, action: str = "cancel"
) -> Entity:
    """Cancelling frees the slot and the reserved credit and records reason, who and when.
    Payments still open for the session are voided, so nobody is asked to pay for it (one
    that succeeds anyway is recorded with ``refundDue``, see ``payments``), and a payment
    it was paid with is flagged ``refundDue``: a cancelled session keeps no money."""
    if reason is not None and len(reason) > 2000:
        raise BadUserInput(
            "The reason is too long (2000 characters at most).", {"reason": "too long"}
        )
    ctx, session, target = await _begin(entities, session_id, action)
    fields = {
        "cancellationReason": reason or "",
        "cancelledBy": _who(entities),
        "cancelledAt": ctx.now,
        "holdExpiresAt": None,
    }
    async with undo_on_failure():
        if not await _move(ctx, session_id, session, target, fields):
            raise await _changed(ctx, session_id, "cancelled")
        await ctx.release_session(session, session_id)
        if session.get("entitlementId"):
            await credits.release(ctx.domain, session["entitlementId"], session_id)
        refunds = await close_for_cancelled(ctx, session_id, _WHY[action])
    for payment_id in refunds:
        log_refund_due(payment_id, session_id)
    return await _reread(entities, ctx, session_id)


_WHY = {"cancel": "The session was cancelled", "lapse": "The session's payment hold ended"}


async def lapse_hold(
    entities: ActorEntities,
    session_id: str,
    reason: str = "The payment did not arrive within the hold time.",
) -> Entity:
    """System: a session whose hold ended without a usable payment gives its slot back."""
    return await cancel_session(entities, session_id, reason, action="lapse")


async def start_session(entities: ActorEntities, session_id: str) -> Entity:
    ctx, session, target = await _begin(entities, session_id, "start")
    if not await _move(ctx, session_id, session, target, {"startedAt": ctx.now}):
        raise await _changed(ctx, session_id, "started")
    return await _reread(entities, ctx, session_id)


async def complete_session(entities: ActorEntities, session_id: str, report: str) -> Entity:
    """Completion needs the report and charges the pack once. The status moves first (one
    conditional update, so of racing completions exactly one proceeds), then the credit is
    charged; if the charge fails (no credit left) the move is taken back."""
    if not report or not report.strip():
        raise BadUserInput("A session is completed with its report.", {"report": "is required"})
    ctx, session, target = await _begin(entities, session_id, "complete")
    entities.access.entity_type("session").validate(
        {**session, "reportContent": report}, reported={"reportContent"}
    )
    fields = {
        "reportContent": report,
        "reportSubmitted": True,
        "reportShared": False,  # guardians read it once it is shared (reports.py)
        "completedAt": ctx.now,
    }
    async with undo_on_failure():
        if not await _move(ctx, session_id, session, target, fields):
            raise await _changed(ctx, session_id, "completed")
        pack = session.get("entitlementId")
        if pack:
            await credits.consume(ctx.domain, pack, session_id)
        await schedule.session_completed(ctx.domain, session_id, ctx.now)
    await ctx.prune(session)
    return await _reread(entities, ctx, session_id)


async def mark_no_show(entities: ActorEntities, session_id: str) -> Entity:
    """A missed session is charged like a held one when the pack allows (the credit was
    reserved for it); otherwise its reservation is released."""
    ctx, session, target = await _begin(entities, session_id, "no_show")
    async with undo_on_failure():
        if not await _move(ctx, session_id, session, target, {}):
            raise await _changed(ctx, session_id, "marked as a no-show")
        pack = session.get("entitlementId")
        if pack:
            try:
                await credits.consume(ctx.domain, pack, session_id)
            except InsufficientCredits:
                await credits.release(ctx.domain, pack, session_id)
        await ctx.release_session(session, session_id)
    return await _reread(entities, ctx, session_id)


async def _reread(entities: ActorEntities, ctx: Scheduling, session_id: str) -> Entity:
    """The session as the caller may see it (a system caller sees everything)."""
    return await entities.require("session", session_id)
