"""What each job does. Every handler reloads what it is about and acts only if that is still
the moment it was scheduled for; messages are written under the job's key, so a second run
writes nothing; state changes go through the same lifecycle operations as a user's request."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.platform.actor import Actor
from app.platform.entities import ActorEntities, EntityService
from app.platform.errors import AppError
from app.platform.jobs import Handler, Outcome
from app.platform.outbox import Outbox
from app.tutoring import changes
from app.tutoring.jobs import schedule
from app.tutoring.messages import render
from app.tutoring.scheduling import transitions
from app.tutoring.scheduling.rules import teacher_zone
from app.tutoring.settings import NAMESPACE, TutoringSettings, load_settings


def handlers(service: EntityService) -> dict[str, Handler]:
    """The pack's handlers, bound to the service they act through."""
    outbox = Outbox(service.store, clock=service.clock, changes=service.changes)

    async def system(actor: Actor) -> ActorEntities:
        return await service.for_actor(actor)

    async def state(entities: ActorEntities, slug: str, entity_id: str) -> dict[str, Any] | None:
        found = await entities.internal_state(slug, entity_id)
        return found["data"] if found else None

    async def message(
        entities: ActorEntities, key: str, recipient: str, recipient_id: str, template: str,
        variables: Mapping[str, Any],
    ) -> Outcome:  # fmt: skip
        contact = await state(entities, recipient, recipient_id) or {}
        channel = "whatsapp" if contact.get("whatsappNumber") else "email"
        values = {"name": contact.get("name"), **variables}
        settings = await entities.access.state.settings(NAMESPACE, TutoringSettings)
        # Times read in the recipient's zone: a teacher's own, else the organization's.
        subject, body = render(template, values, teacher_zone(contact, settings))
        written = await outbox.write(
            entities.actor.organization_id,
            recipient_type=recipient,
            recipient_id=recipient_id,
            channel=channel,
            template=template,
            variables=values,
            idempotency_key=key,
            subject=subject,
            body=body,
        )
        return Outcome.done() if written else Outcome.skipped("message already written")

    async def reminder(actor: Actor, payload: Mapping[str, Any], key: str) -> Outcome:
        entities = await system(actor)
        session = await state(entities, "session", payload["sessionId"])
        if session is None or session.get("status") != "scheduled":
            return Outcome.skipped("the session is no longer scheduled")
        if schedule.stamp(session["startTime"]) != payload["startTime"]:
            return Outcome.skipped("the session was moved; its new time has its own reminder")
        recipient = payload["recipient"]
        recipient_id = session.get(f"{recipient}Id")
        if not recipient_id:
            return Outcome.skipped(f"the session has no {recipient}")
        return await message(
            entities, key, recipient, recipient_id, "session_reminder",
            {"sessionId": payload["sessionId"], "startTime": payload["startTime"],
             "subject": session.get("subject")},
        )  # fmt: skip

    async def followup(actor: Actor, payload: Mapping[str, Any], key: str) -> Outcome:
        entities = await system(actor)
        session = await state(entities, "session", payload["sessionId"])
        if session is None or session.get("status") != "completed":
            return Outcome.skipped("the session is not completed")
        guardian = session.get("guardianId")
        pack_id = session.get("entitlementId")
        if not guardian:
            return Outcome.skipped("no guardian to write to")
        if not pack_id:
            return await message(
                entities, key, "guardian", guardian, "trial_followup_buy_pack",
                {"sessionId": payload["sessionId"]},
            )  # fmt: skip
        pack = await state(entities, "entitlement", pack_id) or {}
        settings = await load_settings(service.store, actor.organization_id)
        remaining = pack.get("remainingCredits", 0)
        if remaining > settings.lowCreditsThreshold:
            return Outcome.skipped(f"{remaining} credits left: no renewal prompt")
        return await message(
            entities, key, "guardian", guardian, "pack_followup_renew",
            {"sessionId": payload["sessionId"], "entitlementId": pack_id,
             "remainingCredits": remaining},
        )  # fmt: skip

    async def expiry_warning(actor: Actor, payload: Mapping[str, Any], key: str) -> Outcome:
        entities = await system(actor)
        pack = await state(entities, "entitlement", payload["entitlementId"])
        if pack is None or pack.get("status") != "active":
            return Outcome.skipped("the pack is not active (exhausted, expired or cancelled)")
        if not pack.get("expiresAt") or schedule.stamp(pack["expiresAt"]) != payload["expiresAt"]:
            return Outcome.skipped("the pack's expiry date changed")
        return await message(
            entities, key, "guardian", pack["guardianId"], "pack_expiring",
            {"entitlementId": payload["entitlementId"], "expiresAt": payload["expiresAt"],
             "daysRemaining": payload["daysRemaining"],
             "remainingCredits": pack.get("remainingCredits")},
        )  # fmt: skip

    async def expire(actor: Actor, payload: Mapping[str, Any], key: str) -> Outcome:
        entities = await system(actor)
        expired = await entities.atomic_update(
            "entitlement",
            payload["entitlementId"],
            condition={
                "data.status": "active",
                "data.expiresAt": datetime.fromisoformat(payload["expiresAt"]),
            },
            update={"$set": {"data.status": "expired"}},
            event=changes.EXPIRED,
        )
        return Outcome.done() if expired else Outcome.skipped("not active at that expiry date")

    def lifecycle(operation: Any, expected: str) -> Handler:
        async def run(actor: Actor, payload: Mapping[str, Any], key: str) -> Outcome:
            entities = await system(actor)
            session = await state(entities, "session", payload["sessionId"])
            if session is None:
                return Outcome.skipped("the session no longer exists")
            moment = payload.get("startTime") or payload.get("holdExpiresAt")
            field = "startTime" if "startTime" in payload else "holdExpiresAt"
            if not session.get(field) or schedule.stamp(session[field]) != moment:
                return Outcome.skipped(f"the session's {field} changed")
            try:
                await operation(entities, payload["sessionId"])
            except AppError as exc:  # already moved on (started, cancelled, ...): nothing to do
                return Outcome.skipped(f"{exc.code}: {exc.message}")
            return Outcome.done(expected)

        return run

    return {
        schedule.REMINDER: reminder,
        schedule.FOLLOWUP: followup,
        schedule.EXPIRY_WARNING: expiry_warning,
        schedule.EXPIRE: expire,
        schedule.AUTO_START: lifecycle(transitions.start_session, "started"),
        schedule.NO_SHOW: lifecycle(transitions.mark_no_show, "marked as a no-show"),
        schedule.HOLD_LAPSE: lifecycle(transitions.lapse_hold, "hold lapsed"),
    }
