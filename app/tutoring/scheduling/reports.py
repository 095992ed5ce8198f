"""Sharing a completed session's report with the family, and taking it back.

``reportContent`` may hold teacher feedback not meant for the family yet, so guardians read
it only while ``reportShared`` is true: a conditional entry of the guardian role's read mask
(``roles.REPORT_WHEN_SHARED``), applied by the engine wherever session data leaves it. This
module only moves the flag. Who may do so is the engine's decision too (the sharing policy in
``roles.py``, held on the sessions a caller's role reaches); the one domain rule here is that
only a completed session has a report to share.
"""

from __future__ import annotations

from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import Forbidden
from app.platform.permissions import Action
from app.tutoring.errors import InvalidTransition
from app.tutoring.roles import REPORT_SHARING_RESOURCE
from app.tutoring.scheduling.context import Scheduling, scheduling

SHAREABLE_STATUS = "completed"


async def share_report(entities: ActorEntities, session_id: str) -> Entity:
    """Idempotent: sharing a shared report keeps who shared it first, and when."""
    ctx, session = await _begin(entities, session_id, "share")
    if not session.get("reportShared"):
        await ctx.domain.atomic_update(
            "session",
            session_id,
            condition={"data.status": SHAREABLE_STATUS, "data.reportShared": {"$ne": True}},
            update={
                "$set": {
                    "data.reportShared": True,
                    "data.reportSharedAt": ctx.now,
                    "data.reportSharedBy": _who(entities),
                }
            },
        )
    return await entities.require("session", session_id)


async def unshare_report(entities: ActorEntities, session_id: str) -> Entity:
    """Hides the report from guardians again (idempotent); the audit log keeps the history."""
    ctx, session = await _begin(entities, session_id, "unshare")
    if session.get("reportShared") is not False:
        await ctx.domain.atomic_update(
            "session",
            session_id,
            condition={"data.status": SHAREABLE_STATUS, "data.reportShared": {"$ne": False}},
            update={
                "$set": {"data.reportShared": False},
                "$unset": {"data.reportSharedAt": "", "data.reportSharedBy": ""},
            },
        )
    return await entities.require("session", session_id)


async def _begin(
    entities: ActorEntities, session_id: str, verb: str
) -> tuple[Scheduling, dict[str, Any]]:
    """``NOT_FOUND`` outside the caller's scope, ``FORBIDDEN`` unless a role of theirs that
    reaches this session may share reports, ``INVALID_TRANSITION`` unless it is completed."""
    ctx = await scheduling(entities, f"session.report.{verb}")
    await entities.require("session", session_id)
    session = await ctx.state("session", session_id)
    doc = {"_id": session_id, "type": "session", "data": session}
    if not await entities.access.allows_on(REPORT_SHARING_RESOURCE, Action.UPDATE, "session", doc):
        raise Forbidden(f"Your role may not {verb} this session's report.")
    if session.get("status") != SHAREABLE_STATUS:
        raise InvalidTransition(
            f"Only a completed session's report can be {verb}d; this session is "
            f"{session.get('status')}."
        )
    return ctx, session


def _who(entities: ActorEntities) -> str:
    actor = entities.actor
    return actor.on_behalf_of or actor.user_id
