"""GraphQL subscriptions over websockets: Strawberry's ``graphql-transport-ws`` handler, with
the service's authentication, limits and close codes.

The protocol is Strawberry's (ping/pong, the ``connection_init`` deadline, ``subscribe``,
``complete``); this module adds, at ``connection_init``, the bearer token from the payload
(``{"Authorization": "Bearer ..."}``), verified like an HTTP request's, the rate limit, the
per-user connection limit and the token's expiry, and, at ``subscribe``, the rate limit, the
per-connection subscription limit and persisted or trusted documents. Each subscription runs
with a context of its own that every event renews (``Context.renew``); only subscriptions run
here (queries and mutations are ``POST /graphql``).

Close codes (README "Subscriptions"): 4400 bad message, 4401 missing, invalid or expired
token (also a ``subscribe`` before ``connection_ack``), 4406 no ``graphql-transport-ws``,
4408 no ``connection_init`` in time, 4409 a subscription id in use, 4429 too many
``connection_init``s, connections for this user or connects per minute, 4413 a slow consumer
(more events waiting than ``LIVE_MAX_PENDING_EVENTS``), 1013 live updates unavailable or
interrupted (reconnect, then catch up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from app.graphql.context import Context
from app.graphql.errors import classify
from app.platform import logs
from app.platform.auth import Identity
from app.platform.errors import AppError, BadUserInput, RateLimited, Unauthenticated
from app.platform.live import LimitReached, LiveConnection
from app.platform.org_state import OrgState

if TYPE_CHECKING:
    from app.graphql.view import GraphQLApp

log = logging.getLogger(__name__)

BAD_MESSAGE = 4400
UNAUTHORIZED = 4401
TOO_MANY = 4429
SLOW_CONSUMER = 4413
TRY_AGAIN_LATER = 1013
CLOSE_SECONDS = 5.0
LISTEN_SECONDS = 10.0


@dataclass
class LiveContext:
    """One websocket connection: who it is once ``connection_init`` has proved it."""

    app: GraphQLApp
    request_id: str
    connection_params: dict[str, Any] = field(default_factory=dict)  # set by Strawberry
    identity: Identity | None = None
    connection: LiveConnection | None = None

    async def operation(self, operation_id: str) -> LiveOperation:
        """A context for one subscription, as of now."""
        state = await self.app.runtime.entities.states.get(self._identity.organization_id)
        actor, entities, limits = await self._view(state)
        return LiveOperation(
            self.app.runtime, actor, entities, self.request_id, limits, self, operation_id
        )

    async def _view(self, state: OrgState) -> tuple[Any, Any, Any]:
        runtime = self.app.runtime
        actor = await runtime.actors.resolve(self._identity, state)
        entities = await runtime.entities.for_actor(actor, state)
        return actor, entities, self.app.limits_for(state)

    @property
    def _identity(self) -> Identity:
        assert self.identity is not None, "authenticated at connection_init"
        return self.identity


@dataclass
class LiveOperation(Context):
    """The context of one subscription; ``refresh`` before each event."""

    live: LiveContext = field(default=None)  # type: ignore[assignment]
    operation_id: str = ""
    # Set once the subscription listens (its feed is open): see ``handle_subscribe``.
    listening: asyncio.Event = field(default_factory=asyncio.Event)

    async def refresh(self, state: OrgState) -> None:
        """The subscriber's permissions as of ``state``: a role, mask or link change applies
        to the next event."""
        self.renew(*await self.live._view(state))


def error_payload(exc: AppError, request_id: str) -> list[dict[str, Any]]:
    error = classify(GraphQLError(exc.message, original_error=exc), request_id)
    return [error.formatted]


class LiveHandler(BaseGraphQLTransportWSHandler[LiveContext, None]):
    """Strawberry's handler with the service's authentication, limits and close codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleanup: list[Callable[[], None]] = []
        self._closing: asyncio.Task[None] | None = None

    # -- connection_init --------------------------------------------------------------

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(BAD_MESSAGE, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(TOO_MANY, "Too many initialisation requests")
            return
        self.connection_init_received = True
        refusal = await self._admit(payload)
        if refusal is not None:
            await self.websocket.close(*refusal)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _admit(self, payload: dict[str, Any]) -> tuple[int, str] | None:
        """Authenticates and admits the connection; the close code and reason if refused."""
        runtime = self.context.app.runtime
        auth = payload.get("Authorization", payload.get("authorization"))
        scheme, _, token = auth.partition(" ") if isinstance(auth, str) else ("", "", "")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("missing token")
            identity = await runtime.verifier.verify(token.strip())
        except Unauthenticated:
            return UNAUTHORIZED, "Unauthorized: the bearer token is missing, invalid or expired"
        left = (identity.expires_at or float("inf")) - time.time()
        if left <= 0:
            return UNAUTHORIZED, "Unauthorized: the bearer token has expired"
        logs.organization_id.set(identity.organization_id)
        logs.user_id.set(identity.user_id)
        if runtime.hub is None or runtime.live_users is None:
            return TRY_AGAIN_LATER, "Live updates are not available on this server"
        try:
            await self._count(identity)
            release = runtime.live_users.acquire(identity.organization_id, identity.user_id)
        except RateLimited as exc:
            return TOO_MANY, f"Rate limited: retry after {exc.retry_after} s"
        except LimitReached as exc:
            return TOO_MANY, exc.message
        self._cleanup.append(release)
        try:
            await runtime.hub.start()
        except Exception:
            log.warning("live updates unavailable: the change feed is not subscribed")
            return TRY_AGAIN_LATER, "Live updates are unavailable; try again shortly"
        settings = runtime.settings
        connection = LiveConnection(
            identity.organization_id,
            max_subscriptions=settings.live_max_subscriptions_per_connection,
            max_pending=settings.live_max_pending_events,
            on_overflow=lambda: self.close_soon(
                SLOW_CONSUMER,
                f"Slow consumer: more than {settings.live_max_pending_events} events waiting; "
                "reconnect and catch up",
            ),
            on_interrupted=lambda: self.close_soon(
                TRY_AGAIN_LATER, "Live updates were interrupted; reconnect and catch up"
            ),
        )
        self._cleanup.append(runtime.hub.attach(identity.organization_id, connection))
        if left != float("inf"):
            timer = asyncio.get_running_loop().call_later(
                left, self.close_soon, UNAUTHORIZED, "Unauthorized: the bearer token has expired"
            )
            self._cleanup.append(timer.cancel)
        self.context.identity = identity
        self.context.connection = connection
        return None

    async def _count(self, identity: Identity) -> None:
        """A connect and each subscribe count against the caller's rate limits."""
        limiter = self.context.app.runtime.rate_limiter
        if limiter is not None:
            await limiter.hit(identity.organization_id, identity.user_id)

    def close_soon(self, code: int, reason: str) -> None:
        """Closes the socket from outside the message loop (a timer, the hub): stops every
        subscription at once, then closes within ``CLOSE_SECONDS`` (a client that reads
        nothing cannot hold the close up; uvicorn's pings time its socket out)."""
        if self._closing is not None:
            return

        async def close() -> None:
            for operation_id in list(self.operations):
                await self.cleanup_operation(operation_id)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await self.websocket.close(code, reason)

        self._closing = asyncio.create_task(close())

    async def shutdown(self) -> None:
        await super().shutdown()
        for undo in reversed(self._cleanup):
            undo()
        self._cleanup.clear()

    # -- subscribe --------------------------------------------------------------------

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged or self.context.identity is None:
            await self.websocket.close(UNAUTHORIZED, "Unauthorized")
            return
        if message["id"] in self.operations:
            await self.websocket.close(4409, f"Subscriber for {message['id']} already exists")
            return
        payload = message.get("payload")
        if not isinstance(payload, dict):
            await self.websocket.close(BAD_MESSAGE, "Invalid subscribe payload")
            return
        try:
            operation, context = await self._prepare(message["id"], payload)
        except AppError as exc:
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": error_payload(exc, self.context.request_id),
                }  # type: ignore[typeddict-item]
            )
            return
        operation.task = asyncio.create_task(self._run(operation, context))
        operation.task.add_done_callback(self._task_done)
        self.operations[message["id"]] = operation
        # Messages are handled one at a time: waiting here until the subscription listens
        # (or was refused) means a client that sends ``ping`` after ``subscribe`` and gets
        # its ``pong`` knows that no change made from then on can be missed. Bounded.
        listening = asyncio.ensure_future(context.listening.wait())
        try:
            await asyncio.wait(
                (listening, operation.task),
                timeout=LISTEN_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            listening.cancel()

    async def _prepare(
        self, operation_id: str, payload: dict[str, Any]
    ) -> tuple[Operation[LiveContext, None], LiveOperation]:
        identity = self.context.identity
        assert identity is not None and self.context.connection is not None
        await self._count(identity)
        limit = self.context.connection.max_subscriptions
        if len(self.operations) >= limit:
            raise LimitReached(
                f"At most {limit} subscriptions may run on one connection; complete one "
                "before starting another.",
                details={"limit": limit},
            )
        context = await self.context.operation(operation_id)
        query, variables = payload.get("query"), payload.get("variables")
        name, extensions = payload.get("operationName"), payload.get("extensions")
        if not isinstance(extensions, dict | None) or not isinstance(variables, dict | None):
            raise BadUserInput("variables and extensions must be objects.")
        if not isinstance(query, str | None) or not isinstance(name, str | None):
            raise BadUserInput("query and operationName must be strings.")
        query = await self.context.app.persisted.resolve(query, extensions, name, context.entities)
        if query is None:
            raise BadUserInput("No GraphQL document in the subscribe message.")
        return Operation(self, operation_id, query, variables, name), context

    async def _run(self, operation: Operation[LiveContext, None], context: LiveOperation) -> None:
        """Strawberry's ``run_operation`` with the subscription's own context, subscriptions
        only, and a refusal before the first event sent as an ``error`` message."""
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                allowed_operation_types=(OperationType.SUBSCRIPTION,),
            )
            async with aclosing(source):
                first = True
                async for result in source:
                    if first and result.errors and not result.data:
                        await operation.send_initial_errors(result.errors)
                        return
                    first = False
                    if isinstance(result, ExecutionResult):
                        await operation.send_next(result)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
