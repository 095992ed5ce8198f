"""Rate limits per user and per organization, counted in a real Redis shared by processes."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from app.config import Settings
from app.graphql.app import create_app
from app.graphql.server import server_config
from app.platform.auth import mint_dev_token
from app.platform.errors import RateLimited
from app.platform.ratelimit import RateLimiter
from app.runtime import build_runtime
from tests.conftest import DEV_SECRET

QUERY = {"query": "{ me { userId } }"}


@contextlib.asynccontextmanager
async def _server(world, clock, redis_url, **limits):
    """An API process of its own (own runtime, own Redis connection) on the shared store."""
    settings = Settings(auth_dev_secret=DEV_SECRET, redis_url=redis_url, **limits)
    runtime = await build_runtime(settings, store=world.service.store, clock=clock)
    runtime.entities = world.service
    await runtime.attach_queue()
    server = uvicorn.Server(server_config(create_app(runtime), "127.0.0.1", 0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task
        await runtime.redis.aclose()


def _auth(world, user: str, role: str = "admin") -> dict[str, str]:
    token = mint_dev_token(DEV_SECRET, org=world.org, user=user, roles=[role])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def flushed(redis_url):
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    yield redis_url
    await redis.flushdb()
    await redis.aclose()


async def test_a_user_over_the_limit_gets_429_with_retry_after(world, clock, flushed):
    async with (
        _server(world, clock, flushed, rate_limit_user_per_minute=5) as url,
        httpx.AsyncClient() as client,
    ):
        statuses = [
            (await client.post(url, json=QUERY, headers=_auth(world, "u-admin"))).status_code
            for _ in range(5)
        ]
        assert statuses == [200] * 5
        refused = await client.post(url, json=QUERY, headers=_auth(world, "u-admin"))
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 120
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == retry_after
        assert "at most 5 per 60 s" in error["message"]
        # Another user of the organization is not held back by this one.
        other = await client.post(url, json=QUERY, headers=_auth(world, "u-t1", "teacher"))
        assert other.status_code == 200


async def test_an_organization_has_its_own_limit(world, other_world, clock, flushed):
    async with (
        _server(world, clock, flushed, rate_limit_org_per_minute=6) as url,
        httpx.AsyncClient() as client,
    ):
        users = ["u-admin", "u-t1", "u-t2", "u-g1", "u-g2", "u-admin"]
        for user in users:
            response = await client.post(url, json=QUERY, headers=_auth(world, user))
            assert response.status_code == 200
        refused = await client.post(url, json=QUERY, headers=_auth(world, "u-g2"))
        assert refused.status_code == 429
        assert "for this organization" in refused.json()["errors"][0]["message"]
        # Another organization on the same service is unaffected.
        elsewhere = await client.post(url, json=QUERY, headers=_auth(other_world, "u-admin"))
        assert elsewhere.status_code == 200


async def test_the_limit_holds_across_api_processes(world, clock, flushed):
    async with (
        _server(world, clock, flushed, rate_limit_user_per_minute=4) as first,
        _server(world, clock, flushed, rate_limit_user_per_minute=4) as second,
        httpx.AsyncClient() as client,
    ):
        statuses = []
        for url in (first, second, first, second, first, second):
            response = await client.post(url, json=QUERY, headers=_auth(world, "u-admin"))
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]


async def test_an_unreachable_redis_lets_requests_through(caplog):
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(redis, per_user=1, per_org=1)
    for _ in range(3):
        await limiter.hit("org", "user")  # no exception: capacity protection fails open
    assert "rate limiter unavailable" in caplog.text
    await redis.aclose()


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_window_slides_and_retry_after_is_honest(flushed):
    redis = Redis.from_url(flushed)
    clock = _Clock(6000.0)  # the start of a window
    limiter = RateLimiter(redis, per_user=10, per_org=0, clock=clock)
    for _ in range(10):
        await limiter.hit("org", "user")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("org", "user")
    assert refused.value.retry_after >= 60  # this window is spent: wait into the next one
    clock.now += refused.value.retry_after
    await limiter.hit("org", "user")  # and then one more passes, as promised
    # Half-way into the next window, half of the previous minute still counts.
    clock.now = 6000.0 + 60 + 30
    passed = 0
    with contextlib.suppress(RateLimited):
        for _ in range(10):
            await limiter.hit("org", "user")
            passed += 1
    assert 3 <= passed <= 5
    await redis.aclose()
