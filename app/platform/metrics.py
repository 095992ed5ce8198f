"""Prometheus metrics of the platform's moving parts, and how they are exposed.

Everything is registered in ``prometheus_client``'s process-wide default registry, so the
API's ``/metrics`` route and the threaded ``start_metrics_server`` show the same series. No
label carries personal data or an organization: label values are names chosen by the code
(job types, outcome codes, limit scopes) or, for names chosen by clients, bounded by
``LabelValues``. Per-request work stays at a context-variable read and an integer increment
per store call plus a few observations per request (see ``app.graphql.metrics``).
"""

from __future__ import annotations

import functools
import hmac
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from socketserver import ThreadingMixIn
from typing import Any, ParamSpec, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.trace import Span, SpanKind
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import choose_encoder

from app.platform import tracing

P = ParamSpec("P")
T = TypeVar("T")

METRICS_PATH = "/metrics"
OTHER = "(other)"

JOB_RUNS = Counter(
    "job_runs_total",
    "Runs of recorded jobs by type and outcome: done, skipped, failed (final), retry (raised "
    "to be run again), interrupted (cancelled, e.g. by a stopping worker).",
    ["type", "status"],
)
JOB_SECONDS = Histogram(
    "job_run_duration_seconds",
    "Wall time of one job run, including its store calls, by job type.",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTBOX_QUEUED = Gauge(
    "outbox_queued_messages",
    "Messages waiting to be sent (status queued), counted after each delivery round by the "
    "process that delivers them.",
)
OUTBOX_SENT = Counter("outbox_sent_messages_total", "Messages handed to the sender.")
OUTBOX_FAILURES = Counter(
    "outbox_send_failures_total", "Sends that raised; the message is queued again."
)
RATE_LIMIT_REFUSALS = Counter(
    "rate_limit_refusals_total",
    "Requests refused by a rate limit, by the limit's scope (user or organization).",
    ["scope"],
)


class LabelValues:
    """Bounds a label whose values come from outside (a client's operation names): values
    are cut to ``length`` characters and, once ``limit`` distinct ones were seen, any new one
    is ``(other)``. Each value is one more series per metric, so an unbounded label would let
    any client grow the scrape and the time-series database without limit."""

    def __init__(self, limit: int, length: int = 64, other: str = OTHER) -> None:
        self.limit = limit
        self.length = length
        self.other = other
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        value = value[: self.length]
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return self.other
        self._seen.add(value)
        return value


job_types = LabelValues(limit=100)


# -- per request ------------------------------------------------------------------------------


class RequestStats:
    """What one request cost; the transport sets it in ``current_request`` for the request's
    duration and the store counts its round trips into it (tasks the request starts, such as
    DataLoader batches, inherit the same object)."""

    __slots__ = ("round_trips",)

    def __init__(self) -> None:
        self.round_trips = 0


current_request: ContextVar[RequestStats | None] = ContextVar("current_request", default=None)


# -- jobs -------------------------------------------------------------------------------------


class _JobRun:
    __slots__ = ("span", "status", "type")

    def __init__(self) -> None:
        self.type: str | None = None
        self.status: str | None = None
        self.span: Span | None = None


_job: ContextVar[_JobRun | None] = ContextVar("job_run", default=None)


def job_run(run: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorates the job service's ``run``: one span per run while tracing is on, and, for a
    run that claimed its job (``job_claimed``), one count by type and outcome and its
    duration. The outcome is what ``job_finished`` recorded, else ``retry`` for an exception
    (the queue runs it again) or ``interrupted`` for a cancellation."""

    @functools.wraps(run)
    async def observed(*args: P.args, **kwargs: P.kwargs) -> T:
        record = _JobRun()
        token = _job.set(record)
        started = time.perf_counter()
        outcome = "unknown"
        try:
            with tracing.span("job", kind=SpanKind.CONSUMER) as span:
                record.span = span
                return await run(*args, **kwargs)
        except Exception:
            outcome = "retry"
            raise
        except BaseException:
            outcome = "interrupted"
            raise
        finally:
            _job.reset(token)
            if record.type is not None:
                JOB_RUNS.labels(record.type, record.status or outcome).inc()
                JOB_SECONDS.labels(record.type).observe(time.perf_counter() - started)

    return observed


def job_claimed(job_type: str) -> None:
    """The running job (see ``job_run``) was claimed and is of this type."""
    record = _job.get()
    if record is None:
        return
    record.type = job_types(job_type)
    if record.span is not None:
        record.span.update_name(f"job {record.type}")
        record.span.set_attribute("job.type", record.type)


def job_finished(status: str) -> None:
    """The running job ended with this (final) status."""
    record = _job.get()
    if record is None:
        return
    record.status = status
    if record.span is not None:
        record.span.set_attribute("job.status", status)


# -- exposition -------------------------------------------------------------------------------


def render(accept: str | None) -> tuple[bytes, str]:
    """The registry in the format the scraper asked for (Prometheus text 0.0.4 by default,
    OpenMetrics when its ``Accept`` says so), with that format's content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (always, when no
    token is configured). Compared in constant time."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


def _metrics_wsgi(token: str | None) -> Callable[..., Iterable[bytes]]:
    exposition = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found: metrics are at /metrics\n"]
        if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
            )
            return [b"Unauthorized\n"]
        return exposition(environ, start_response)

    return app


class MetricsServer:
    """``/metrics`` on a port of its own, served by threads, off the event loop."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int, *, host: str = "0.0.0.0", token: str | None = None
) -> MetricsServer:
    """Serves ``/metrics`` on ``host:port`` (``METRICS_PORT``) in a daemon thread, so scrapes
    never wait for, or hold up, the event loop; with ``token`` (``METRICS_TOKEN``) only to
    ``Authorization: Bearer <token>``. Port 0 picks a free port (see ``.port``)."""

    server_class = _ThreadingServer
    if ":" in host:  # an IPv6 address

        class _ThreadingServer6(_ThreadingServer):
            address_family = socket.AF_INET6

        server_class = _ThreadingServer6
    server = make_server(
        host, port, _metrics_wsgi(token), server_class=server_class, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


class Telemetry:
    """What a process started to be observed (its metrics port, its tracing), stopped
    together at exit so the last spans are sent."""

    def __init__(self, metrics_server: MetricsServer | None, tracing_on: bool) -> None:
        self.metrics_server = metrics_server
        self.tracing_on = tracing_on

    def close(self) -> None:
        """Blocks while the last batch of spans is sent (bounded by the exporter's timeout):
        call it at exit, from a thread if an event loop must keep running meanwhile."""
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        if self.tracing_on:
            tracing.shutdown_tracing()
            self.tracing_on = False


def start_telemetry(
    service_name: str,
    *,
    otlp_endpoint: str | None,
    metrics_port: int | None,
    metrics_token: str | None = None,
    metrics_host: str = "0.0.0.0",
) -> Telemetry:
    """Tracing when ``otlp_endpoint`` (``OTEL_EXPORTER_OTLP_ENDPOINT``) is set, and
    ``/metrics`` on ``metrics_port`` (``METRICS_PORT``) when set, behind ``metrics_token``
    (``METRICS_TOKEN``) when that is set too. Call it before building the ASGI app."""
    tracing_on = tracing.configure_tracing(service_name, otlp_endpoint)
    server = None
    if metrics_port is not None:
        server = start_metrics_server(metrics_port, host=metrics_host, token=metrics_token)
    return Telemetry(server, tracing_on)
