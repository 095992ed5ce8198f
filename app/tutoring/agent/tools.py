"""The tutoring tools. Each calls the same function as the GraphQL field of the same job, as
the calling user, so an agent can do exactly what its user could do through the API: the
same scope, the same lifecycle table, the same permission to record payment outcomes.
Entities come back as the caller sees them, statuses in the API's enum form (``values``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.platform.entities import ActorEntities, Entity
from app.platform.errors import BadUserInput
from app.platform.inputs import utc_datetime
from app.platform.tools import Tool, Toolbox
from app.tutoring.agent.values import public, stored_filters
from app.tutoring.entity_types import ENTITY_TYPES
from app.tutoring.scheduling import booking, payments, retry, transitions
from app.tutoring.students import update_entity

TYPES = [t.slug for t in ENTITY_TYPES]
_ID = {"type": "string", "minLength": 1}
_WHEN = {"type": "string", "format": "date-time", "description": "ISO 8601 with a UTC offset"}


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def as_json(entity: Entity | None) -> dict[str, Any] | None:
    """An entity as the caller sees it: hidden fields are simply absent, statuses are the
    GraphQL enums' values (``SCHEDULED``)."""
    if entity is None:
        return None
    return {
        "id": entity.id,
        "type": entity.type,
        "createdAt": entity.created_at,
        "updatedAt": entity.updated_at,
        **public(entity.type, entity.data),
    }


def _when(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadUserInput(f"{name} must be an ISO 8601 date-time.", {name: "invalid"}) from None
    return utc_datetime(parsed, name)


async def _query(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    where = stored_filters(a["type"], a.get("filters"))
    page = await entities.query(
        a["type"], where=where, search=a.get("search"), first=a.get("limit", 20)
    )
    return {"items": [as_json(e) for e in page.items], "hasMore": page.has_next_page}


async def _get(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await entities.require(a["type"], a["id"]))


async def _create(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    if a["type"] == "session":
        raise BadUserInput(
            "Sessions are created by booking: use session.book.", {"type": "use session.book"}
        )
    if a["type"] in ("payment", "entitlement"):
        from app.tutoring import billing

        create = billing.create_payment if a["type"] == "payment" else billing.create_entitlement
        return as_json(await create(entities, a["data"]))
    return as_json(await entities.create(a["type"], a["data"]))


async def _update(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await update_entity(entities, a["type"], a["id"], a["data"]))


async def _slots(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    slots = await booking.available_slots(
        entities,
        a["teacherId"],
        _when(a["from"], "from"),
        _when(a["to"], "to"),
        a["durationMinutes"],
        a.get("studentId"),
    )
    return [{"start": s.start, "end": s.end} for s in slots]


async def _book(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    request = booking.BookingRequest(
        teacher_id=a["teacherId"],
        student_id=a["studentId"],
        start=_when(a["startTime"], "startTime"),
        duration_minutes=a["durationMinutes"],
        subject=a.get("subject"),
        entitlement_id=a.get("entitlementId"),
    )
    return as_json(await booking.book_session(entities, request))


async def _reschedule(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    start = _when(a["startTime"], "startTime")
    return as_json(await booking.reschedule_session(entities, a["sessionId"], start))


async def _cancel(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await transitions.cancel_session(entities, a["sessionId"], a.get("reason")))


async def _complete(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await transitions.complete_session(entities, a["sessionId"], a["report"]))


async def _start(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await transitions.start_session(entities, a["sessionId"]))


async def _no_show(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await transitions.mark_no_show(entities, a["sessionId"]))


async def _retry_payment(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await retry.retry_session_payment(entities, a["sessionId"]))


async def _payment_succeeded(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    paid = await payments.record_payment_succeeded(
        entities, a["paymentId"], a.get("providerReference")
    )
    return as_json(paid)


async def _payment_failed(entities: ActorEntities, a: Mapping[str, Any]) -> Any:
    return as_json(await payments.record_payment_failed(entities, a["paymentId"], a["reason"]))


_TYPE = {"type": "string", "enum": TYPES}
_DATA = {"type": "object", "description": "Field values; which you may set depends on your role"}

TOOLS = Toolbox(
    [
        Tool(
            "entity.query",
            "Search entities of a type you may list (scoped and masked to you). Filters map "
            "a field to a value or to {eq|ne|in|nin|gt|gte|lt|lte|exists|contains: value}.",
            _obj({"type": _TYPE, "filters": {"type": "object"}, "search": {"type": "string"},
                  "limit": {"type": "integer", "minimum": 1, "maximum": 100}}, ["type"]),
            _query,
        ),
        Tool("entity.get", "One entity by id, as you may see it.",
             _obj({"type": _TYPE, "id": _ID}, ["type", "id"]), _get),
        Tool("entity.create", "Create a teacher, student, guardian, payment or pack.",
             _obj({"type": _TYPE, "data": _DATA}, ["type", "data"]), _create),
        Tool("entity.update", "Change fields of an entity (null clears a field).",
             _obj({"type": _TYPE, "id": _ID, "data": _DATA}, ["type", "id", "data"]), _update),
        Tool(
            "scheduling.available_slots",
            "Start times a booking would be accepted at now, within [from, to].",
            _obj({"teacherId": _ID, "from": _WHEN, "to": _WHEN,
                  "durationMinutes": {"type": "integer", "minimum": 5, "maximum": 600},
                  "studentId": _ID}, ["teacherId", "from", "to", "durationMinutes"]),
            _slots,
        ),
        Tool(
            "session.book",
            "Book a session (with a pack, or pay-before-book without one).",
            _obj({"teacherId": _ID, "studentId": _ID, "startTime": _WHEN,
                  "durationMinutes": {"type": "integer", "minimum": 5, "maximum": 600},
                  "subject": {"type": "string"}, "entitlementId": _ID},
                 ["teacherId", "studentId", "startTime", "durationMinutes"]),
            _book,
        ),
        Tool("session.reschedule", "Move a scheduled session to a new start time.",
             _obj({"sessionId": _ID, "startTime": _WHEN}, ["sessionId", "startTime"]),
             _reschedule),
        Tool("session.cancel", "Cancel a session, with an optional reason.",
             _obj({"sessionId": _ID, "reason": {"type": "string"}}, ["sessionId"]), _cancel),
        Tool("session.complete", "Complete an in-progress session with its report.",
             _obj({"sessionId": _ID, "report": {"type": "string", "minLength": 1}},
                  ["sessionId", "report"]), _complete),
        Tool("session.start", "Start a scheduled session (its teacher, from a few minutes "
             "before its start until its end; or an admin).",
             _obj({"sessionId": _ID}, ["sessionId"]), _start),
        Tool("session.mark_no_show", "Record that a scheduled session did not take place "
             "(its teacher after the grace period, or an admin after the start).",
             _obj({"sessionId": _ID}, ["sessionId"]), _no_show),
        Tool("session.retry_payment", "Give a session awaiting payment a new payment when its "
             "payment failed (or is still pending), before its payment hold ends. Returns the "
             "session; its paymentId is the payment to pay.",
             _obj({"sessionId": _ID}, ["sessionId"]), _retry_payment),
        Tool("payment.record_succeeded", "Admin: record that the provider took a payment. "
             "Schedules its session if that still awaits payment; otherwise the payment is "
             "flagged refundDue.",
             _obj({"paymentId": _ID, "providerReference": {"type": "string"}}, ["paymentId"]),
             _payment_succeeded),
        Tool("payment.record_failed", "Admin: record that the provider refused a payment "
             "(final for that payment; the session can retry with session.retry_payment).",
             _obj({"paymentId": _ID, "reason": {"type": "string", "minLength": 1}},
                  ["paymentId", "reason"]), _payment_failed),
    ]
)  # fmt: skip
