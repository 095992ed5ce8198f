"""Strawberry's ASGI view, adapted: the caller's context, JSON guarded at the door, and
HTTP-level refusals as GraphQL errors with a code instead of plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.graphql.context import Context
from app.graphql.gate import error_response, wants_ide
from app.graphql.limits import RequestLimits
from app.graphql.schema import schema
from app.platform import inputs
from app.platform.auth import Identity
from app.platform.errors import BadUserInput, ErrorCode
from app.platform.org_state import OrgState
from app.runtime import Runtime

STATIC = Path(__file__).parent / "static"


class GraphQLApp(GraphQL):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=False)
        self.runtime = runtime

    async def get_context(self, request: Any, response: Any) -> Context:
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
        if scope["type"] != "http":
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
