"""Metrics and traces of GraphQL requests, and the ``/metrics`` route.

``RequestMetrics`` wraps the ``/graphql`` route outside the gate, so every request counts,
including the ones the gate refuses before Strawberry runs (401, 408, 413, 429) and the ones
the view refuses (400). For each it records the operation's type and name, the outcome code
(the first error's ``extensions.code``, else ``OK``), the latency and the store round trips.
``OperationMetrics``, first in the schema's extensions so that it leaves last and sees the
codes ``ErrorCodes`` gave, names the operation and its outcome; when it did not get to (a
refusal before execution, an operation stopped by its time budget), the middleware reads the
code from the error body, which is small.

Per request, with tracing off, this is one context variable, one extension hook and three
observations: no per-field hooks. Strawberry's ``OpenTelemetryExtension``, which wraps every
resolver, is put in the schema only while tracing is on (``trace_graphql``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from graphql import get_operation_ast
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.types import ExecutionContext

from app.config import Settings
from app.platform import tracing
from app.platform.metrics import (
    METRICS_PATH,
    LabelValues,
    RequestStats,
    authorized,
    current_request,
    render,
)

API_SERVICE_NAME = "tutoring-api"
ANONYMOUS = "(anonymous)"
NONE = "(none)"  # no operation identified: refused before parsing, or not in the document
NO_TYPE = "none"
OK = "OK"
MAX_ERROR_BODY = 64 * 1024

REQUESTS = Counter(
    "graphql_requests_total",
    "GraphQL requests by operation and outcome code (the first error's extensions.code, or "
    "OK); refusals before execution count with operation (none).",
    ["operation_type", "operation", "code"],
)
DURATION = Histogram(
    "graphql_request_duration_seconds",
    "Time from the request's arrival at /graphql to the end of its response.",
    ["operation_type", "operation"],
)
ROUND_TRIPS = Histogram(
    "graphql_request_store_round_trips",
    "Store round trips made while serving one request.",
    ["operation_type", "operation"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

# Operation names are chosen by clients: at most this many distinct ones become labels.
operation_names = LabelValues(limit=100, length=64)


class OperationRecord(RequestStats):
    """One request to ``/graphql``, filled in as it is served."""

    __slots__ = ("code", "operation", "operation_type")

    def __init__(self) -> None:
        super().__init__()
        self.operation_type = NO_TYPE
        self.operation = NONE
        self.code: str | None = None

    def identify(self, execution: ExecutionContext) -> None:
        found = operation_of(execution)
        if found is not None:
            self.operation_type = found[0]
            self.operation = operation_names(found[1]) if found[1] else ANONYMOUS

    def observe(self, seconds: float, status: int, body: list[bytes] | None) -> None:
        code = self.code or _code_of_response(status, body)
        key = (self.operation_type, self.operation)
        series = _series.get(key)
        if series is None:
            series = _series[key] = (DURATION.labels(*key), ROUND_TRIPS.labels(*key), {})
        duration, round_trips, by_code = series
        counter = by_code.get(code)
        if counter is None:
            counter = by_code[code] = REQUESTS.labels(*key, code)
        counter.inc()
        duration.observe(seconds)
        round_trips.observe(self.round_trips)


# The labelled children by label values, kept here: ``labels()`` validates and locks on every
# call, and costs more than the observations themselves. Bounded as the label values are.
_series: dict[tuple[str, str], tuple[Any, Any, dict[str, Any]]] = {}


def operation_of(execution: ExecutionContext) -> tuple[str, str | None] | None:
    """The type and name of the operation the document selects, if it parsed and the
    operation exists (a name the client sent but the document lacks is not a name)."""
    document = execution.graphql_document
    if document is None:
        return None
    operation = get_operation_ast(document, execution.operation_name)
    if operation is None:
        return None
    return operation.operation.value, operation.name.value if operation.name else None


def _code_of_result(result: Any) -> str:
    errors = getattr(result, "errors", None)
    if not errors:
        return OK
    return str((errors[0].extensions or {}).get("code") or "INTERNAL")


def _code_of_response(status: int, body: list[bytes] | None) -> str:
    """The code of a response the extension did not see: from its GraphQL-shaped error body,
    else from its HTTP status."""
    try:
        errors = json.loads(b"".join(body or ())).get("errors")
        return str(errors[0]["extensions"]["code"])
    except (ValueError, TypeError, LookupError, AttributeError):
        pass
    if status == 0 or status >= 500:
        return "INTERNAL"
    return OK if status < 400 else f"HTTP_{status}"


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        record = current_request.get()
        if not isinstance(record, OperationRecord):  # not over HTTP (a test, a websocket)
            yield
            return
        try:
            yield
        finally:  # also when the time budget cancels the operation: it still has a name
            record.identify(self.execution_context)
        record.code = _code_of_result(self.execution_context.result)


def _is_ide(scope: Scope) -> bool:
    """The browser's GET for GraphiQL: a page, not an operation."""
    if scope.get("method") != "GET":
        return False
    return any(k == b"accept" and b"text/html" in v for k, v in scope.get("headers", ()))


class RequestMetrics:
    """Measures each request to the wrapped ASGI app (the ``/graphql`` route); while tracing
    is on, also opens the request's server span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_ide(scope):
            await self.app(scope, receive, send)
            return
        if tracing.tracer is None:
            await self._measured(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        name = f"{scope['method']} {scope['path']}"
        with tracing.server_span(name, headers, attributes) as span:
            status = await self._measured(scope, receive, send)
            span.set_attribute("http.response.status_code", status)

    async def _measured(self, scope: Scope, receive: Receive, send: Send) -> int:
        record = OperationRecord()
        status = 0
        body: list[bytes] | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = message["status"]
                if record.code is None:  # the extension did not see it: keep the error body
                    body = []
            elif body is not None and message["type"] == "http.response.body":
                if sum(map(len, body)) < MAX_ERROR_BODY:
                    body.append(message.get("body", b""))
            await send(message)

        token = current_request.set(record)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            current_request.reset(token)
            record.observe(time.perf_counter() - started, status, body)
        return status


def metrics_routes(settings: Settings) -> list[Route]:
    """``GET /metrics`` on the main port, behind ``METRICS_TOKEN`` when it is set; none when
    ``METRICS_PORT`` serves the metrics on a port of their own."""
    if settings.metrics_port is not None:
        return []
    token = settings.metrics_token

    async def metrics(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "Unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        # Collecting reads /proc and walks every series: a thread keeps it off the loop.
        body, content_type = await run_in_threadpool(render, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return [Route(METRICS_PATH, metrics, methods=["GET"])]


# -- tracing ----------------------------------------------------------------------------------


class OperationTracing(OpenTelemetryExtension):
    """Strawberry's tracing extension on our tracer provider, without values: the operation
    span names the operation but does not carry the document (literals in it can be personal
    data), and resolver spans carry the field's path but not its arguments."""

    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context, tracer_provider=tracing.provider)

    def on_operation(self) -> Iterator[None]:
        span = self._tracer.start_span(
            "graphql", kind=SpanKind.INTERNAL, attributes={"component": "graphql"}
        )
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:  # ended even when the time budget cancels the operation
            found = operation_of(self.execution_context)
            if found is not None:
                kind, name = found
                span.update_name(f"{kind} {name}" if name else kind)
                span.set_attribute("graphql.operation.type", kind)
                if name:
                    span.set_attribute("graphql.operation.name", name)
            span.end()

    def add_tags(self, span: Any, info: Any, kwargs: Any) -> None:
        super().add_tags(span, info, None)  # the path and parent type, never the arguments


def trace_graphql() -> bool:
    """Puts ``OperationTracing`` first in the schema's extensions while tracing is on and
    takes it out while it is off; returns whether it is in. ``create_app`` calls it, so an
    app built after ``configure_tracing`` traces and one built without it pays nothing."""
    from app.graphql.schema import schema

    others = tuple(e for e in schema.extensions if e is not OperationTracing)
    on = tracing.tracer is not None
    schema.extensions = (OperationTracing, *others) if on else others
    return on
