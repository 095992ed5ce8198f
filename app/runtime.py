"""The composition root: builds the platform's services from settings and the known packs.

Transports (CLI, GraphQL, workers, agent) ask this module for a ``Runtime`` and hold no
wiring of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.config import Settings
from app.platform.auth import ActorResolver, TokenVerifier
from app.platform.clock import Clock, system_clock
from app.platform.entities import EntityService
from app.platform.packs import ensure_indexes
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

    async def close(self) -> None:
        await self.store.close()


async def build_runtime(
    settings: Settings | None = None, *, store: Store | None = None, clock: Clock = system_clock
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
    return Runtime(
        settings=settings,
        store=store,
        entities=EntityService(store, clock=clock),
        verifier=verifier,
        actors=ActorResolver(store),
    )
