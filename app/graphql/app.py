"""The ASGI application: GraphQL behind bearer authentication, GraphiQL, health probes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.graphql.context import Context
from app.graphql.schema import schema
from app.platform.auth import Identity
from app.platform.errors import ErrorCode, Unauthenticated
from app.runtime import Runtime

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 256 * 1024


def _error_response(
    status: int, message: str, code: ErrorCode, headers: dict | None = None
) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": str(code)}}]}
    return JSONResponse(body, status_code=status, headers=headers)


def _wants_ide(scope: Scope) -> bool:
    request = Request(scope)
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


class BearerGate:
    """Authenticates every GraphQL request before Strawberry sees it and caps the body.

    A missing or bad token is HTTP 401 with a single ``UNAUTHENTICATED`` error and nothing
    else; the browser's GET for GraphiQL needs no token (the page holds no data).
    """

    def __init__(self, app: Any, runtime: Runtime, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.runtime = runtime
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _wants_ide(scope):
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        headers = {"X-Request-ID": request_id}
        auth = Request(scope).headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("The bearer token is missing, invalid or expired.")
            identity = self.runtime.verifier.verify(token.strip())
        except Unauthenticated as exc:
            response = _error_response(
                401,
                exc.message,
                ErrorCode.UNAUTHENTICATED,
                {**headers, "WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        body = await self._read_capped(receive)
        if body is None:
            response = _error_response(
                413,
                f"The request body exceeds {self.max_body} bytes; send a smaller query.",
                ErrorCode.QUERY_TOO_COMPLEX,
                headers,
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["identity"] = identity
        state["request_id"] = request_id
        await self.app(scope, _replay(body), send)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class GraphQLApp(GraphQL):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=False)
        self.runtime = runtime

    async def get_context(self, request: Any, response: Any) -> Context:
        identity: Identity = request.state.identity
        actor = await self.runtime.actors.resolve(identity)
        entities = await self.runtime.entities.for_actor(actor)
        response.headers["X-Request-ID"] = request.state.request_id
        return Context(self.runtime, actor, entities, request.state.request_id)

    async def render_graphql_ide(self, request: Request) -> Response:
        return self._ide()

    @staticmethod
    def _ide() -> Response:
        return HTMLResponse((STATIC / "graphiql.html").read_text())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry's, but HTTP-level refusals (bad JSON, wrong method) are GraphQL
        errors with a code instead of plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if _wants_ide(scope):
            await self._ide()(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = _error_response(exc.status_code, exc.reason, ErrorCode.BAD_USER_INPUT)
        await response(scope, receive, send)


def create_app(runtime: Runtime) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        checks: dict[str, bool] = {"store": await runtime.store.ping()}
        redis = await runtime.redis_ok()
        if redis is not None:  # only when this process uses Redis
            checks["redis"] = redis
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    graphql = BearerGate(GraphQLApp(runtime), runtime)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Mount("/static/graphiql", StaticFiles(directory=STATIC), name="graphiql-assets"),
        ]
    )
