"""Strawberry's ASGI view, adapted: the caller's context, JSON guarded at the door,
HTTP-level refusals as GraphQL errors with a code instead of plain text, persisted and trusted
documents, and subscriptions over ``graphql-transport-ws`` on the same path (``live``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from app.graphql.context import Context
from app.graphql.errors import classify
from app.graphql.gate import error_response, new_request_id, wants_ide
from app.graphql.limits import RequestLimits
from app.graphql.live import LiveContext, LiveHandler
from app.graphql.persisted import PersistedOperations
from app.graphql.schema import schema
from app.graphql.trusted import TrustedDocuments, TrustedDocumentsError
from app.platform import inputs
from app.platform.auth import Identity
from app.platform.errors import AppError, BadUserInput, ErrorCode
from app.platform.org_state import OrgState
from app.runtime import ConfigurationError, Runtime

STATIC = Path(__file__).parent / "static"


class GraphQLApp(GraphQL):
    graphql_transport_ws_handler_class = LiveHandler

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=False,
            # Only this protocol: its handler (``live``) authenticates; no HTTP streaming.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.live_init_timeout_seconds),
            max_subscriptions_per_connection=None,  # ``live`` counts, with a coded error
        )
        self.runtime = runtime
        self.persisted = PersistedOperations(
            runtime.documents,
            load_trusted(settings.graphql_trusted_documents),
            trusted_only=settings.graphql_trusted_documents_only,
            max_bytes=settings.graphql_apq_max_bytes,
        )

    async def get_context(self, request: Any, response: Any) -> Context | LiveContext:
        if isinstance(request, WebSocket):  # authenticated by its connection_init
            request_id = request.scope.get("state", {}).get("request_id") or new_request_id()
            return LiveContext(self, request_id)
        identity: Identity = request.state.identity
        # One read of the organization's version; types, roles, links and limits are cached.
        state = await self.runtime.entities.states.get(identity.organization_id)
        actor = await self.runtime.actors.resolve(identity, state)
        entities = await self.runtime.entities.for_actor(actor, state)
        limits = self.limits_for(state)
        return Context(self.runtime, actor, entities, request.state.request_id, limits)

    def limits_for(self, state: OrgState) -> RequestLimits:
        """The service's limits, or the organization's lower cost limit."""
        settings = self.runtime.settings
        own = state.limits.maxQueryCost
        return RequestLimits(
            max_cost=min(settings.graphql_max_cost, own or settings.graphql_max_cost),
            max_nodes=settings.graphql_max_nodes,
            seconds=settings.graphql_timeout_seconds,
        )

    async def execute_single(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Runs the document the request names: its text, or a persisted or trusted one by
        hash (``app.graphql.persisted``); a refusal is a GraphQL error with its code."""
        try:
            query = await self.persisted.resolve(
                request_data.query,
                request_data.extensions,
                request_data.operation_name,
                context.entities,
            )
        except AppError as exc:
            error = classify(GraphQLError(exc.message, original_error=exc), context.request_id)
            cost = {"requestedQueryCost": 0, "actualQueryCost": 0}
            cost["maximumQueryCost"] = context.limits.max_cost
            return ExecutionResult(data=None, errors=[error], extensions={"cost": cost})
        if query is not request_data.query:
            request_data = replace(request_data, query=query)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    def decode_json(self, data: str | bytes) -> object:
        try:
            return inputs.loads(data)
        except BadUserInput as exc:
            raise HTTPException(400, exc.message) from None

    async def render_graphql_ide(self, request: Request) -> Response:
        return self._ide()

    @staticmethod
    def _ide() -> Response:
        return HTMLResponse((STATIC / "graphiql.html").read_text())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # a websocket: subscriptions (``live``)
            await super().__call__(scope, receive, send)
            return
        if wants_ide(scope):
            await self._ide()(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = error_response(exc.status_code, exc.reason, ErrorCode.BAD_USER_INPUT)
        await response(scope, receive, send)


def load_trusted(path: str | None) -> TrustedDocuments | None:
    """``GRAPHQL_TRUSTED_DOCUMENTS``, loaded once at start; a bad file stops the start with
    one line naming it."""
    if not path:
        return None
    try:
        return TrustedDocuments.load(path)
    except (TrustedDocumentsError, OSError) as exc:
        raise ConfigurationError(f"GRAPHQL_TRUSTED_DOCUMENTS: {exc}") from None
