"""The composition root: builds the platform's services from settings and the known packs.

Transports (CLI, GraphQL, workers, agent) ask this module for a ``Runtime`` and hold no
wiring of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from arq.connections import ArqRedis

from app.config import Settings
from app.platform.auth import ActorResolver, TokenVerifier
from app.platform.clock import Clock, system_clock
from app.platform.entities import EntityService
from app.platform.packs import ensure_indexes
from app.platform.queue import ArqQueue, EmbeddedRedis, connect
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

    async def attach_queue(self) -> None:
        """Connects the job service to Redis: ``REDIS_URL``, or an embedded server."""
        url = self.settings.redis_url
        if not url:
            self.embedded_redis = await EmbeddedRedis().start()
            url = self.embedded_redis.url
        self.redis = await connect(url)
        self.entities.jobs.queue = ArqQueue(self.redis, self.entities.clock)

    async def redis_ok(self) -> bool | None:
        if self.redis is None:
            return None
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded_redis is not None:
            await self.embedded_redis.stop()
        await self.store.close()


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
    store = store or open_store(settings.mongodb_url, settings.mongodb_db)
    await ensure_indexes(store, list(PACKS.values()))
    verifier = TokenVerifier(
        dev_secret=settings.auth_dev_secret,
        jwks_url=settings.auth_jwks_url,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        claims=settings.claim_names,
    )
    runtime = Runtime(
        settings=settings,
        store=store,
        entities=EntityService(store, clock=clock),
        verifier=verifier,
        actors=ActorResolver(store),
    )
    if with_queue:
        await runtime.attach_queue()
    return runtime
