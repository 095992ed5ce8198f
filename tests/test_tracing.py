"""OpenTelemetry tracing: on only with an OTLP endpoint, spans for GraphQL operations, store
calls and job runs, never carrying values, and really sent over OTLP/HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.extensions.tracing import OpenTelemetryExtension

from app.config import Settings
from app.graphql.app import create_app
from app.graphql.metrics import trace_graphql
from app.graphql.schema import schema
from app.platform import tracing
from app.platform.actor import Actor
from app.platform.auth import mint_dev_token
from app.platform.jobs import JobService, JobStatus, Outcome
from app.platform.tracing import configure_tracing, shutdown_tracing, traces_url
from app.runtime import build_runtime
from tests.conftest import DEV_SECRET
from tests.test_metrics import serve
from tests.world import NOW

ME = "query TracedMe { me { userId } }"
SEARCH = """query TracedSearch {
  sessions(first: 2, filter: {subject: "word problems"}) { totalCount } }"""


def _store_call(span) -> tuple[str, str]:
    return span.attributes["db.operation.name"], span.attributes["db.collection.name"]


def _tracing_extensions() -> list:
    return [
        e
        for e in schema.extensions
        if isinstance(e, type) and issubclass(e, OpenTelemetryExtension)
    ]


@pytest.fixture
def spans():
    """Tracing on, into memory, for this test only (apps built in it trace)."""
    exporter = InMemorySpanExporter()
    assert configure_tracing("tutoring-api", None, processor=SimpleSpanProcessor(exporter))
    yield exporter
    shutdown_tracing()
    trace_graphql()


def _auth(world) -> dict[str, str]:
    token = mint_dev_token(DEV_SECRET, org=world.org, user="u-admin", roles=["admin"])
    return {"Authorization": f"Bearer {token}"}


async def test_a_graphql_request_is_one_trace_with_operation_resolver_and_store_spans(
    world, clock, spans
):
    settings = Settings(auth_dev_secret=DEV_SECRET)
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {**_auth(world), "traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"}
    async with serve(world, clock, settings) as base, httpx.AsyncClient() as client:
        response = await client.post(f"{base}/graphql", json={"query": SEARCH}, headers=headers)
        assert "errors" not in response.json()
    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}

    server = by_name["POST /graphql"]
    assert server.kind is SpanKind.SERVER
    assert server.attributes["http.response.status_code"] == 200
    # The caller's trace continues: every span of the request is in it.
    assert {format(s.context.trace_id, "032x") for s in finished} == {parent_trace}

    operation = by_name["query TracedSearch"]
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "TracedSearch"
    assert operation.parent.span_id == server.context.span_id
    assert "GraphQL Resolving: sessions" in by_name

    store = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert store, "no store spans"
    for span in store:
        assert set(span.attributes) == {"db.system.name", "db.collection.name", "db.operation.name"}
        assert span.name == " ".join(_store_call(span))
    assert ("find", "entities") in {_store_call(s) for s in store}
    # Values never leave in spans: not the document, not arguments, not filters.
    for span in finished:
        assert "query" not in span.attributes
        assert not [k for k in span.attributes if k.startswith("graphql.param")]
        assert not [v for v in span.attributes.values() if "word problems" in str(v)]
        assert not [v for v in span.attributes.values() if world.org in str(v)]
    assert all(s.resource.attributes["service.name"] == "tutoring-api" for s in finished)


async def test_a_job_run_is_a_span_with_its_store_calls_inside(store, clock, spans):
    jobs = JobService(store, clock=clock)
    actor = Actor.system("org-a", "tracing")

    async def handler(actor, payload, key):
        await store.collection("things").find_one("org-a", {"secret": "Gauss"})
        return Outcome.done()

    await jobs.enqueue(actor, "tracing.job", {}, NOW - timedelta(minutes=1), "traced-job")
    spans.clear()
    assert await jobs.run("org-a", "traced-job", {"tracing.job": handler}) is JobStatus.DONE
    finished = spans.get_finished_spans()
    (job,) = [s for s in finished if s.name == "job tracing.job"]
    assert job.kind is SpanKind.CONSUMER
    assert job.attributes["job.type"] == "tracing.job"
    assert job.attributes["job.status"] == "done"
    inside = {
        _store_call(s) for s in finished if s.parent and s.parent.span_id == job.context.span_id
    }
    assert {
        ("find_one_and_update", "jobs"),
        ("find_one", "things"),
        ("update_one", "jobs"),
    } <= inside
    assert not [s for s in finished if "Gauss" in str(dict(s.attributes))]


async def test_spans_are_posted_to_the_otlp_endpoint(world, clock):
    received: list[tuple[str, str, bytes]] = []

    async def collect(request: Request) -> Response:
        received.append((request.url.path, request.headers["content-type"], await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    collector = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])]),
            host="127.0.0.1", port=0, log_level="warning",
        )
    )  # fmt: skip
    task = asyncio.create_task(collector.serve())
    while not collector.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    endpoint = f"http://127.0.0.1:{collector.servers[0].sockets[0].getsockname()[1]}"
    try:
        assert configure_tracing("tutoring-api", endpoint)
        settings = Settings(auth_dev_secret=DEV_SECRET, otel_exporter_otlp_endpoint=endpoint)
        async with serve(world, clock, settings) as base, httpx.AsyncClient() as client:
            answer = await client.post(f"{base}/graphql", json={"query": ME}, headers=_auth(world))
            assert "errors" not in answer.json()
        # Shutting down flushes the batch; the exporter posts from its own thread, so wait
        # in a thread and keep this loop free to serve the collector.
        await asyncio.to_thread(shutdown_tracing)
    finally:
        shutdown_tracing()
        trace_graphql()
        collector.should_exit = True
        await task
    assert received, "nothing was posted to the collector"
    names, services = set(), set()
    for path, content_type, body in received:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            services.add(attributes["service.name"])
            for scope_spans in resource_spans.scope_spans:
                names.update(s.name for s in scope_spans.spans)
    assert services == {"tutoring-api"}
    assert {"POST /graphql", "query TracedMe", "GraphQL Resolving: me"} <= names


async def test_without_an_endpoint_nothing_traces_and_the_schema_has_no_tracing_extension(
    store, clock
):
    assert configure_tracing("tutoring-api", None) is False
    assert tracing.tracer is None and tracing.provider is None
    runtime = await build_runtime(Settings(auth_dev_secret=DEV_SECRET), store=store, clock=clock)
    create_app(runtime)
    assert _tracing_extensions() == []


async def test_building_an_app_while_tracing_adds_the_extension_once(store, clock, spans):
    runtime = await build_runtime(Settings(auth_dev_secret=DEV_SECRET), store=store, clock=clock)
    create_app(runtime)
    create_app(runtime)
    assert len(_tracing_extensions()) == 1


def test_standard_otel_variables_keep_working(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed-by-operator")
    exporter = InMemorySpanExporter()
    try:
        configure_tracing("tutoring-worker", None, processor=SimpleSpanProcessor(exporter))
        with tracing.span("work"):
            pass
        (span,) = exporter.get_finished_spans()
        assert span.resource.attributes["service.name"] == "renamed-by-operator"
    finally:
        shutdown_tracing()
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://elsewhere:4318/traces")
    assert traces_url("http://collector:4318") == "http://elsewhere:4318/traces"
