"""OpenTelemetry tracing, on only when an OTLP endpoint is configured.

Off is the default and must cost nothing measurable: ``tracer`` stays ``None`` and each
instrumented place does one ``if tracer is None`` check, with no span objects or context
managers on that path. On, a ``TracerProvider`` of our own (not the global one, so tests and
a restart can configure it again) sends spans in batches over OTLP's HTTP/protobuf transport.
The SDK still reads the standard ``OTEL_*`` variables: the sampler (``OTEL_TRACES_SAMPLER``),
batching (``OTEL_BSP_*``), the exporter's headers, timeout, compression and certificates,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, and the resource (``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` win over the service name given here).

Spans carry names of things (collections, operations, job types), never values: a filter or
an argument can hold a name, a phone number or a note.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

log = logging.getLogger(__name__)

T = TypeVar("T")

# The process's tracer while tracing is on, else ``None``. Read it as ``tracing.tracer`` (not
# ``from app.platform.tracing import tracer``) so that a later ``configure_tracing`` is seen.
tracer: Tracer | None = None
provider: TracerProvider | None = None

TRACES_PATH = "/v1/traces"


def traces_url(endpoint: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL under which each signal has its own path
    (the OTLP exporter spec); ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as it is."""
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        endpoint.rstrip("/") + TRACES_PATH
    )


def configure_tracing(
    service_name: str, endpoint: str | None, *, processor: SpanProcessor | None = None
) -> bool:
    """Turns tracing on when ``endpoint`` (``OTEL_EXPORTER_OTLP_ENDPOINT``) is set, with
    ``service_name`` as the resource's ``service.name``, and returns whether it is on.
    ``processor`` replaces the OTLP exporter (tests pass an in-memory one). Call it before
    building the ASGI app, which adds Strawberry's tracing extension only while it is on."""
    global tracer, provider
    shutdown_tracing()
    if endpoint is None and processor is None:
        return False
    # The SDK and the exporter are imported only by a process that traces.
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())
    new_provider = TracerProvider(resource=resource)
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        assert endpoint is not None
        url = traces_url(endpoint)
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
        log.info("tracing on: spans of %s go to %s", service_name, url)
    new_provider.add_span_processor(processor)
    provider = new_provider
    tracer = new_provider.get_tracer("app.platform")
    return True


def shutdown_tracing() -> None:
    """Sends the spans still buffered and turns tracing off (at process exit; in tests)."""
    global tracer, provider
    if provider is not None:
        provider.shutdown()
    tracer = None
    provider = None


async def store_call(active: Tracer, collection: str, operation: str, call: Awaitable[T]) -> T:
    """Awaits one store call inside a client span that names the collection and the
    operation, never the filter (only called while tracing is on)."""
    attributes = {
        "db.system.name": "mongodb",
        "db.collection.name": collection,
        "db.operation.name": operation,
    }
    with active.start_as_current_span(
        f"{operation} {collection}", kind=SpanKind.CLIENT, attributes=attributes
    ):
        return await call


@contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A span around a block while tracing is on; ``None`` and nothing recorded while off.
    For rare work (a job run): per-request paths check ``tracer`` themselves instead."""
    active = tracer
    if active is None:
        yield None
        return
    with active.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


@contextmanager
def server_span(
    name: str, headers: Mapping[str, str], attributes: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """The span of one incoming request, continuing the caller's trace when it sent a W3C
    ``traceparent`` header (only called while tracing is on)."""
    assert tracer is not None
    context = extract(headers)
    with tracer.start_as_current_span(
        name, context=context, kind=SpanKind.SERVER, attributes=attributes
    ) as current:
        yield current
