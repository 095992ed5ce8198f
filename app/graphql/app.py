"""The ASGI application: GraphQL behind the gate, GraphiQL's assets, health probes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from app.graphql.gate import BearerGate, RequestIds
from app.graphql.metrics import RequestMetrics, metrics_routes, trace_graphql
from app.graphql.view import STATIC, GraphQLApp
from app.runtime import Runtime

GRAPHQL_PATH = "/graphql"


def create_app(runtime: Runtime) -> ASGIApp:
    """``/graphql`` goes straight to its handler chain (request id, metrics, the gate, the
    GraphQL view); everything else (health, metrics, GraphiQL's assets, lifespan) to a
    Starlette app. The one route every request takes skips Starlette's router and
    middleware stack, which would cost each operation for nothing."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        checks: dict[str, bool] = {"store": await runtime.store.ping()}
        redis = await runtime.redis_ok()
        if redis is not None:  # only when this process uses Redis
            checks["redis"] = redis
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    trace_graphql()  # Strawberry's tracing extension only while tracing is on
    graphql = RequestIds(RequestMetrics(BearerGate(GraphQLApp(runtime), runtime)))
    site = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *metrics_routes(runtime.settings),
            Mount("/static/graphiql", StaticFiles(directory=STATIC), name="graphiql-assets"),
        ]
    )
    site.add_middleware(RequestIds)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == GRAPHQL_PATH and scope["type"] in ("http", "websocket"):
            await graphql(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
