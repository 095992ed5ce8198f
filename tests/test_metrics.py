"""Prometheus metrics: what an operator's dashboards and alerts read from /metrics.

The registry is process-wide, so every check compares a series before and after the
requests, jobs or deliveries of the test itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from app.config import Settings
from app.graphql.app import create_app
from app.graphql.server import server_config
from app.platform.actor import Actor
from app.platform.auth import mint_dev_token
from app.platform.errors import RateLimited
from app.platform.jobs import JobService, JobStatus, Outcome, Transient
from app.platform.metrics import LabelValues, render, start_metrics_server
from app.platform.outbox import Outbox
from app.platform.ratelimit import RateLimiter
from app.runtime import build_runtime
from tests.conftest import DEV_SECRET, PERSONAL
from tests.world import NOW

TOKEN = "metrics-token-0123456789abcdef"


class Scrape:
    """One reading of the metrics text, by series."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def scrape() -> Scrape:
    return Scrape(render(None)[0].decode())


async def scrape_http(client: httpx.AsyncClient, base_url: str) -> Scrape:
    response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200, response.text
    return Scrape(response.text)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after(name, **labels) - before(name, **labels)


def requests_moved(before: Scrape, after: Scrape, kind: str, operation: str, code: str) -> float:
    labels = {"operation_type": kind, "operation": operation, "code": code}
    return delta(before, after, "graphql_requests_total", **labels)


@contextlib.asynccontextmanager
async def serve(world, clock, settings: Settings, *, queue: bool = False):
    """An API process of its own, for settings the ``api`` fixture does not have."""
    runtime = await build_runtime(settings, store=world.service.store, clock=clock)
    runtime.entities = world.service
    if queue:
        await runtime.attach_queue()
    server = uvicorn.Server(server_config(create_app(runtime), "127.0.0.1", 0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        if runtime.redis is not None:
            await runtime.redis.aclose()


# -- GraphQL requests ---------------------------------------------------------------------------


async def test_requests_count_by_operation_and_outcome_code(api):
    client, base = api.client, api.base_url
    stats = api.world.service.store.stats
    before = await scrape_http(client, base)
    trips_before = stats.round_trips

    ok = await api.gql("query MetricsMe { me { userId } }")
    assert "errors" not in ok
    trips = stats.round_trips - trips_before
    bad = await api.gql("query MetricsBroken { noSuchField }")
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    forbidden = await api.gql(
        'query MetricsHidden { sessions(filter: {guardianId: "x"}) { totalCount } }',
        role="teacher",
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await api.gql("{ me { userId } }")
    assert "errors" not in anonymous
    unauthenticated = await api.post("query MetricsMe { me { userId } }")
    assert unauthenticated.status_code == 401
    too_large = await client.post(
        f"{base}/graphql",
        content=b'{"query": "' + b" " * 300_000 + b'"}',
        headers={"Authorization": f"Bearer {api.token_for('admin')}"},
    )
    assert too_large.status_code == 413

    response = await client.get(f"{base}/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = Scrape(response.text)
    assert requests_moved(before, after, "query", "MetricsMe", "OK") == 1
    assert requests_moved(before, after, "query", "MetricsBroken", "BAD_USER_INPUT") == 1
    assert requests_moved(before, after, "query", "MetricsHidden", "FORBIDDEN") == 1
    assert requests_moved(before, after, "query", "(anonymous)", "OK") == 1
    # Refused at the HTTP door, before any document was read.
    assert requests_moved(before, after, "none", "(none)", "UNAUTHENTICATED") == 1
    assert requests_moved(before, after, "none", "(none)", "QUERY_TOO_COMPLEX") == 1

    me = {"operation_type": "query", "operation": "MetricsMe"}
    assert delta(before, after, "graphql_request_duration_seconds_count", **me) == 1
    assert delta(before, after, "graphql_request_duration_seconds_sum", **me) > 0
    # The request's own store round trips, counted per request.
    assert trips > 0
    assert delta(before, after, "graphql_request_store_round_trips_count", **me) == 1
    assert delta(before, after, "graphql_request_store_round_trips_sum", **me) == trips


async def test_an_operation_stopped_by_its_time_budget_counts_under_its_name(world, clock):
    settings = Settings(auth_dev_secret=DEV_SECRET, graphql_timeout_seconds=0.000001)
    async with serve(world, clock, settings) as base, httpx.AsyncClient() as client:
        token = mint_dev_token(DEV_SECRET, org=world.org, user="u-admin", roles=["admin"])
        query = "query MetricsSlow { sessions(first: 50) { edges { node { student { name } } } } }"
        before = scrape()
        response = await client.post(
            f"{base}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert requests_moved(before, scrape(), "query", "MetricsSlow", "QUERY_TOO_COMPLEX") == 1


async def test_metrics_carry_no_personal_data_or_organization(api):
    await api.gql("{ guardians(first: 10) { edges { node { name email phone } } } }")
    text = (await api.client.get(f"{api.base_url}/metrics")).text
    assert not [value for value in PERSONAL if value in text]
    assert api.world.org not in text


async def test_an_operation_name_missing_from_the_document_is_not_a_label(api):
    response = await api.client.post(
        f"{api.base_url}/graphql",
        json={"query": "query MetricsMe { me { userId } }", "operationName": "Gail Gauss 555"},
        headers={"Authorization": f"Bearer {api.token_for('admin')}"},
    )
    assert response.json()["errors"]
    assert "Gail Gauss" not in (await api.client.get(f"{api.base_url}/metrics")).text


def test_client_chosen_label_values_are_bounded():
    names = LabelValues(limit=2, length=5)
    assert [names(n) for n in ("First", "SecondLonger", "Third", "First")] == [
        "First",
        "Secon",
        "(other)",
        "First",
    ]
    assert names("SecondAgain") == "Secon"  # cut to the same known value


# -- protecting /metrics -----------------------------------------------------------------------


async def test_metrics_token_is_required_when_set(world, clock):
    settings = Settings(auth_dev_secret=DEV_SECRET, metrics_token=TOKEN)
    async with serve(world, clock, settings) as base, httpx.AsyncClient() as client:
        assert (await client.get(f"{base}/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer not-the-metrics-token-000"}
        assert (await client.get(f"{base}/metrics", headers=wrong)).status_code == 401
        right = await client.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200
        assert "graphql_requests_total" in right.text


async def test_metrics_port_serves_metrics_and_the_main_port_does_not(world, clock):
    settings = Settings(auth_dev_secret=DEV_SECRET, metrics_port=9464)
    server = start_metrics_server(0, host="127.0.0.1")
    try:
        async with serve(world, clock, settings) as base, httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/metrics")).status_code == 404
            own = await client.get(f"http://127.0.0.1:{server.port}/metrics")
            assert own.status_code == 200
            assert own.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert "graphql_requests_total" in own.text
            elsewhere = await client.get(f"http://127.0.0.1:{server.port}/other")
            assert elsewhere.status_code == 404
    finally:
        server.close()


async def test_metrics_port_with_a_token():
    server = start_metrics_server(0, host="127.0.0.1", token=TOKEN)
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers={"Authorization": "Bearer x"})).status_code == 401
            ok = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and "job_runs_total" in ok.text
    finally:
        server.close()


# -- jobs, outbox, rate limits ----------------------------------------------------------------------


async def test_job_runs_count_by_type_and_outcome(store, clock):
    jobs = JobService(store, clock=clock)
    actor = Actor.system("org-a", "metrics")

    async def done(actor, payload, key):
        return Outcome.done()

    async def nothing_to_do(actor, payload, key):
        return Outcome.skipped("nothing to do")

    async def flaky(actor, payload, key):
        raise Transient("provider timeout")

    table = {"metrics.done": done, "metrics.skip": nothing_to_do, "metrics.flaky": flaky}
    before = scrape()
    for job_type in (*table, "metrics.unknown"):
        await jobs.enqueue(actor, job_type, {}, NOW - timedelta(minutes=1), f"key-{job_type}")
    assert await jobs.run("org-a", "key-metrics.done", table) is JobStatus.DONE
    assert await jobs.run("org-a", "key-metrics.done", table) is JobStatus.DONE  # not run again
    assert await jobs.run("org-a", "key-metrics.skip", table) is JobStatus.SKIPPED
    with pytest.raises(Transient):
        await jobs.run("org-a", "key-metrics.flaky", table)
    assert await jobs.run("org-a", "key-metrics.unknown", table) is JobStatus.FAILED
    after = scrape()

    runs = "job_runs_total"
    assert delta(before, after, runs, type="metrics.done", status="done") == 1
    assert delta(before, after, runs, type="metrics.skip", status="skipped") == 1
    assert delta(before, after, runs, type="metrics.flaky", status="retry") == 1
    assert delta(before, after, runs, type="metrics.unknown", status="failed") == 1
    assert delta(before, after, "job_run_duration_seconds_count", type="metrics.done") == 1


class FailingSender:
    async def send(self, message) -> None:
        raise ConnectionError("provider down")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message) -> None:
        self.sent.append(message["idempotencyKey"])


async def test_outbox_depth_and_send_failures(store, clock):
    outbox = Outbox(store, clock=clock)
    for key in ("m1", "m2"):
        await outbox.write(
            "org-a", recipient_type="guardian", recipient_id="g", channel="email",
            template="t", variables={}, idempotency_key=key,
        )  # fmt: skip
    before = scrape()
    assert await outbox.deliver(FailingSender()) == 0
    failed = scrape()
    assert delta(before, failed, "outbox_send_failures_total") == 1
    assert failed("outbox_queued_messages") == 2  # the failed one is queued again

    sender = Recorder()
    assert await outbox.deliver(sender) == 2
    after = scrape()
    assert after("outbox_queued_messages") == 0
    assert delta(failed, after, "outbox_sent_messages_total") == 2
    assert delta(failed, after, "outbox_send_failures_total") == 0


@pytest.fixture
async def flushed(redis_url):
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    yield redis_url
    await redis.flushdb()
    await redis.aclose()


async def test_rate_limit_refusals_count_by_scope_and_as_requests(world, clock, flushed):
    settings = Settings(auth_dev_secret=DEV_SECRET, redis_url=flushed, rate_limit_user_per_minute=1)
    async with serve(world, clock, settings, queue=True) as base, httpx.AsyncClient() as client:
        token = mint_dev_token(DEV_SECRET, org=world.org, user="u-admin", roles=["admin"])
        headers = {"Authorization": f"Bearer {token}"}
        body = {"query": "query MetricsMe { me { userId } }"}
        before = await scrape_http(client, base)
        assert (await client.post(f"{base}/graphql", json=body, headers=headers)).status_code == 200
        assert (await client.post(f"{base}/graphql", json=body, headers=headers)).status_code == 429
        after = await scrape_http(client, base)
    assert delta(before, after, "rate_limit_refusals_total", scope="user") == 1
    assert requests_moved(before, after, "query", "MetricsMe", "OK") == 1
    assert requests_moved(before, after, "none", "(none)", "RATE_LIMITED") == 1

    # The limiter on its own, as any other transport would use it.
    redis = Redis.from_url(flushed)
    limiter = RateLimiter(redis, per_user=0, per_org=1)
    before = scrape()
    await limiter.hit("org-x", "u")
    with pytest.raises(RateLimited):
        await limiter.hit("org-x", "u")
    assert delta(before, scrape(), "rate_limit_refusals_total", scope="organization") == 1
    await redis.aclose()


async def test_a_worker_with_metrics_port_serves_its_job_metrics(store, clock):
    import socket

    from workers.settings import worker_telemetry

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = await build_runtime(Settings(metrics_port=port), store=store, clock=clock)
    telemetry = worker_telemetry(runtime)
    try:
        assert telemetry.tracing_on is False  # no OTLP endpoint: no tracing
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert "job_runs_total" in response.text and "outbox_queued_messages" in response.text
    finally:
        telemetry.close()
