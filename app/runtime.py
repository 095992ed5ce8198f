"""The composition root: builds the platform's services from settings and the known packs.

Transports (CLI, GraphQL, workers, agent) ask this module for a ``Runtime`` and hold no
wiring of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from arq.connections import ArqRedis

from app.config import Settings
from app.platform.auth import ActorResolver, TokenVerifier
from app.platform.clock import Clock, system_clock
from app.platform.entities import EntityService
from app.platform.live import Hub, RedisChangeBus, UserConnections
from app.platform.packs import ensure_indexes
from app.platform.persisted import Documents, MemoryDocuments, RedisDocuments
from app.platform.queue import ArqQueue, EmbeddedRedis, connect
from app.platform.ratelimit import RateLimiter
from app.platform.store import Store, open_store
from app.tutoring.pack import PACKS

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    store: Store
    entities: EntityService
    verifier: TokenVerifier
    actors: ActorResolver
    redis: ArqRedis | None = None
    embedded_redis: EmbeddedRedis | None = None
    rate_limiter: RateLimiter | None = None
    # Live updates: set with Redis (``attach_queue``), which carries changes between processes.
    hub: Hub | None = None
    live_users: UserConnections | None = None
    # Documents sent once and then run by their hash (automatic persisted queries).
    documents: Documents | None = None

    async def attach_queue(self) -> None:
        """Connects the job service to Redis: ``REDIS_URL``, or an embedded server. An
        unreachable Redis is retried for ``STARTUP_TIMEOUT_SECONDS``, then refused."""
        url = self.settings.redis_url
        if not url:
            self.embedded_redis = await EmbeddedRedis().start()
            url = self.embedded_redis.url
        self.redis = await until_reachable(
            lambda: connect(url, retries=0),
            "Redis at REDIS_URL",
            "check the URL and that Redis is running",
            self.settings.startup_timeout_seconds,
        )
        self.entities.jobs.queue = ArqQueue(self.redis, self.entities.clock)
        self.rate_limiter = RateLimiter(
            self.redis,
            per_user=self.settings.rate_limit_user_per_minute,
            per_org=self.settings.rate_limit_org_per_minute,
        )
        self.attach_live(self.redis)

    def attach_live(self, redis: ArqRedis) -> None:
        """Committed writes are published on ``redis``; this process's subscribers hear them
        (and every other process's) through one hub. Persisted documents are kept there."""
        settings = self.settings
        bus = RedisChangeBus(redis, replay_events=settings.live_replay_events)
        self.entities.changes.publisher = bus
        self.hub = Hub(bus, self.entities.states)
        self.live_users = UserConnections(settings.live_max_connections_per_user)
        self.documents = RedisDocuments(
            redis,
            ttl_seconds=settings.graphql_apq_ttl_seconds,
            max_documents=settings.graphql_apq_max_documents,
        )

    async def redis_ok(self) -> bool | None:
        if self.redis is None:
            return None
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
        await self.verifier.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded_redis is not None:
            await self.embedded_redis.stop()
        await self.store.close()


T = TypeVar("T")


async def until_reachable(
    attempt: Callable[[], Awaitable[T]], what: str, fix: str, wait_seconds: float
) -> T:
    """Retries ``attempt`` with backoff (0.5 s doubling to 5 s) for ``wait_seconds``, then
    refuses to start with one line: a dependency still starting (compose, Kubernetes) is
    waited for; one that is wrongly configured is named."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        try:
            return await attempt()
        except Exception as exc:
            reason = type(exc).__name__
            if time.monotonic() + delay > deadline:
                raise ConfigurationError(
                    f"{what} is unreachable after {wait_seconds:g} s ({reason}): {fix}; "
                    "STARTUP_TIMEOUT_SECONDS sets how long to wait."
                ) from None
            log.warning("%s is unreachable (%s); retrying in %.1f s", what, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def build_runtime(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
    with_queue: bool = False,
) -> Runtime:
    settings = settings or Settings()
    problems = settings.auth_problems() + settings.production_problems()
    if problems:
        raise ConfigurationError("Refusing to start: " + "; ".join(problems))
    if store is None:
        timeout_ms = int(min(5.0, max(settings.startup_timeout_seconds, 0.2)) * 1000)
        store = open_store(settings.mongodb_url, settings.mongodb_db, timeout_ms=timeout_ms)

        async def reachable() -> Store:
            if not await store.ping():
                raise ConnectionError("no answer to ping")
            return store

        await until_reachable(
            reachable,
            "MongoDB at MONGODB_URL",
            "check the URL and that the server (a replica set member) is running",
            settings.startup_timeout_seconds,
        )
    await ensure_indexes(store, list(PACKS.values()))
    verifier = TokenVerifier(
        dev_secret=settings.auth_dev_secret,
        jwks_url=settings.auth_jwks_url,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        claims=settings.claim_names,
        jwks_fetch_timeout_seconds=settings.auth_jwks_timeout_seconds,
        jwks_wait_seconds=settings.auth_jwks_wait_seconds,
        jwks_min_refresh_seconds=settings.auth_jwks_min_refresh_seconds,
        jwks_max_age_seconds=settings.auth_jwks_max_age_seconds,
        jwks_max_bytes=settings.auth_jwks_max_bytes,
    )
    entities = EntityService(store, clock=clock)
    runtime = Runtime(
        settings=settings,
        store=store,
        entities=entities,
        verifier=verifier,
        actors=ActorResolver(store, entities.states),
        # Without Redis (tests, one-off commands) persisted documents stay in this process.
        documents=MemoryDocuments(
            ttl_seconds=settings.graphql_apq_ttl_seconds,
            max_documents=settings.graphql_apq_max_documents,
        ),
    )
    if with_queue:
        await runtime.attach_queue()
    return runtime
