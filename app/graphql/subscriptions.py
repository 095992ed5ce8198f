"""Subscription roots: live changes, each read again as the subscriber.

Every event has the same shape: ``sequence`` (the organization's change number: increasing,
shared by all subscriptions, with gaps for changes that are not yours), ``kind`` (what
happened), ``removed``, the ``id`` and the document as the subscriber may see it now (scope
and masks applied to this event). ``removed: true`` is the last event about a document that
has just left your scope or filter: it carries the id and no document, and nothing more is
sent about it unless it comes back. ``after`` resumes after a reconnect: the events numbered
after it are replayed first (``BAD_USER_INPUT`` when they are no longer all kept: query
again). See ``app.platform.live`` for the machinery; this module only maps it to types.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types import Info

from app.graphql.admin import ScheduledJob, scheduled_job
from app.graphql.filters import EntitlementFilter, PaymentFilter, SessionFilter, to_query
from app.graphql.live import LiveOperation
from app.graphql.messages import Message
from app.graphql.types.entities import Entitlement, Payment, Session
from app.platform.changes import Change
from app.platform.errors import BadUserInput, QueryTooComplex
from app.platform.jobs import JobStatus
from app.platform.live import (
    Delivery,
    EntityView,
    JobView,
    MessageView,
    ReplayUnavailable,
    Seen,
    follow,
)
from app.platform.outbox import Outbox
from app.tutoring import messages
from app.tutoring.changes import ENTITLEMENT_EVENTS, PAYMENT_EVENTS, SESSION_EVENTS

E = TypeVar("E")


def _kinds(name: str, values: tuple[str, ...], description: str) -> Any:
    return strawberry.enum(
        Enum(name, {v.upper(): v for v in values}),  # type: ignore[misc]
        description=description,
    )


SessionChange = _kinds(
    "SessionChange",
    SESSION_EVENTS,
    "What happened to a session: booked, paid (its payment succeeded), rescheduled, started, "
    "completed, cancelled, marked no-show; updated for any other change (notes, a report).",
)
EntitlementChange = _kinds(
    "EntitlementChange",
    ENTITLEMENT_EVENTS,
    "What happened to a pack: a credit reserved for a booking, consumed by a completed "
    "session, released by a cancellation; the pack expired.",
)
PaymentChange = _kinds("PaymentChange", PAYMENT_EVENTS, "What happened to a payment.")
MessageChange = _kinds("MessageChange", ("queued", "sent"), "A message was queued or sent.")
JobChange = _kinds(
    "JobChange",
    tuple(status.value for status in JobStatus),
    "The job's new status.",
)

SEQUENCE = "The organization's change number: increasing; pass the last you saw as after."
REMOVED = (
    "True on the last event about a document that has left your scope (or filter): it "
    "carries the id and no document."
)


@strawberry.type(description="A session in your scope changed.")
class SessionEvent:
    sequence: int = strawberry.field(description=SEQUENCE)
    kind: SessionChange  # type: ignore[valid-type]
    removed: bool = strawberry.field(description=REMOVED)
    id: strawberry.ID
    session: Session | None = strawberry.field(description="As you may see it; null if removed")


@strawberry.type(description="A pack in your scope changed.")
class EntitlementEvent:
    sequence: int = strawberry.field(description=SEQUENCE)
    kind: EntitlementChange  # type: ignore[valid-type]
    removed: bool = strawberry.field(description=REMOVED)
    id: strawberry.ID
    entitlement: Entitlement | None = strawberry.field(description="null if removed")


@strawberry.type(description="A payment in your scope changed.")
class PaymentEvent:
    sequence: int = strawberry.field(description=SEQUENCE)
    kind: PaymentChange  # type: ignore[valid-type]
    removed: bool = strawberry.field(description=REMOVED)
    id: strawberry.ID
    payment: Payment | None = strawberry.field(description="null if removed")


@strawberry.type(description="A message to you was queued or sent.")
class MessageEvent:
    sequence: int = strawberry.field(description=SEQUENCE)
    kind: MessageChange  # type: ignore[valid-type]
    id: strawberry.ID
    message: Message


@strawberry.type(description="A job was scheduled or its status changed (admin).")
class JobEvent:
    sequence: int = strawberry.field(description=SEQUENCE)
    kind: JobChange  # type: ignore[valid-type]
    id: strawberry.ID
    job: ScheduledJob


def _kind(enum: Any, action: str) -> Any:
    return enum._value2member_map_.get(action) or enum._value2member_map_["updated"]


def _entity_event(cls: type, enum: Any, attribute: str, node: type) -> Callable[[Seen], Any]:
    def build(seen: Seen) -> Any:
        change = seen.change
        document = node(entity=seen.document) if seen.document is not None else None
        return cls(
            sequence=change.sequence,
            kind=_kind(enum, change.action),
            removed=seen.removed,
            id=strawberry.ID(change.id),
            **{attribute: document},
        )

    return build


def _message_event(seen: Seen) -> MessageEvent:
    change = seen.change
    return MessageEvent(
        sequence=change.sequence,
        kind=MessageChange._value2member_map_.get(change.action, MessageChange.QUEUED),
        id=strawberry.ID(change.id),
        message=Message.of(seen.document),
    )


def _job_event(seen: Seen) -> JobEvent:
    job = scheduled_job(seen.document)
    return JobEvent(
        sequence=seen.change.sequence,
        kind=JobChange._value2member_map_.get(seen.change.action, JobChange.QUEUED),
        id=job.id,  # the key, as scheduledJobs, retryJob and cancelJob name it
        job=job,
    )


async def _subscribe(info: Info, view: Any, after: int | None, build: Callable[[Seen], E]) -> Any:
    """Checks the subscription (permissions, filter, limits, replay) before the first event,
    so a refusal is the operation's ``error`` message; then streams its events."""
    context = info.context
    if not isinstance(context, LiveOperation):
        raise BadUserInput(
            "Subscriptions run over the websocket at /graphql (graphql-transport-ws)."
        )
    runtime, live = context.runtime, context.live
    assert runtime.hub is not None and live.connection is not None
    if after is not None and after < 0:
        raise BadUserInput("after is a sequence number (0 or more).", {"after": "negative"})
    await view.seed(context.entities)
    feed = live.connection.open(context.operation_id, view.types)
    missed: list[Change] = []
    try:
        if after is not None:
            found = await runtime.hub.bus.replay(context.actor.organization_id, after)
            if found is None:
                raise ReplayUnavailable(after)
            missed = found
    except BaseException:
        live.connection.close(context.operation_id)
        raise
    deliveries = follow(feed, runtime.hub.states, missed, after)
    context.listening.set()  # from here on no change is missed
    return _events(context, view, deliveries, build)


async def _events(
    context: LiveOperation,
    view: Any,
    deliveries: AsyncIterator[Delivery],
    build: Callable[[Seen], E],
) -> AsyncGenerator[E, None]:
    try:
        async for delivery in deliveries:
            await context.refresh(await delivery.state())
            try:
                async with asyncio.timeout(context.limits.seconds):
                    seen = await view.see(context.entities, delivery.change)
            except TimeoutError:
                raise QueryTooComplex(
                    f"Reading an event took longer than {context.limits.seconds:g} s; "
                    "subscribe again, with a narrower filter."
                ) from None
            if seen is not None:
                context.limits.charge(2)  # the event and its document
                yield build(seen)
    finally:
        context.live.connection.close(context.operation_id)  # type: ignore[union-attr]


AFTER = "Resume after this sequence number: the events you missed are replayed first."
After = Annotated[int | None, strawberry.argument(description=AFTER)]


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        description="Sessions in your scope (and filter) that were booked, paid, rescheduled, "
        "started, completed, cancelled, marked no-show, or otherwise changed."
    )
    async def sessionChanged(
        self, info: Info, filter: SessionFilter | None = None, after: After = None
    ) -> AsyncGenerator[SessionEvent, None]:
        where, search = to_query(filter)
        build = _entity_event(SessionEvent, SessionChange, "session", Session)
        return await _subscribe(info, EntityView("session", where, search), after, build)

    @strawberry.subscription(
        description="Packs in your scope: credits reserved, consumed, released; expiry."
    )
    async def entitlementChanged(
        self, info: Info, filter: EntitlementFilter | None = None, after: After = None
    ) -> AsyncGenerator[EntitlementEvent, None]:
        where, search = to_query(filter)
        build = _entity_event(EntitlementEvent, EntitlementChange, "entitlement", Entitlement)
        return await _subscribe(info, EntityView("entitlement", where, search), after, build)

    @strawberry.subscription(description="Payments in your scope: created, paid, failed.")
    async def paymentChanged(
        self, info: Info, filter: PaymentFilter | None = None, after: After = None
    ) -> AsyncGenerator[PaymentEvent, None]:
        where, search = to_query(filter)
        build = _entity_event(PaymentEvent, PaymentChange, "payment", Payment)
        return await _subscribe(info, EntityView("payment", where, search), after, build)

    @strawberry.subscription(description="Your own messages, as they are queued and sent.")
    async def messageQueued(
        self, info: Info, after: After = None
    ) -> AsyncGenerator[MessageEvent, None]:
        runtime = info.context.runtime
        outbox = Outbox(runtime.store, clock=runtime.entities.clock)
        view = MessageView(outbox, messages.require_own_messages, messages.written_to_caller)
        return await _subscribe(info, view, after, _message_event)

    @strawberry.subscription(description="Admin. Jobs scheduled and their status changes.")
    async def jobChanged(self, info: Info, after: After = None) -> AsyncGenerator[JobEvent, None]:
        view = JobView(info.context.runtime.entities.jobs)
        return await _subscribe(info, view, after, _job_event)
