"""Request rate limits per user and per organization, counted in Redis.

Counting in Redis makes a limit hold across every API process. The window slides: the count
of the current minute plus the previous minute's count weighted by how much of it still lies
inside the last 60 seconds (the approximation Cloudflare and Figma describe), which needs one
pipelined round trip and two small keys per subject. A Redis failure lets requests through:
the limiter protects capacity, and an unreachable Redis must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.platform import metrics
from app.platform.errors import RateLimited

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    scope: str  # "user" or "organization", for the message and metrics
    key: str
    per_window: int


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        per_user: int,
        per_org: int,
        window: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        prefix: str = "ratelimit",
    ) -> None:
        self._redis = redis
        self._per_user = per_user
        self._per_org = per_org
        self._window = window
        self._clock = clock
        self._prefix = prefix

    def _limits(self, org: str, user: str) -> list[Limit]:
        limits = []
        if self._per_user:
            limits.append(Limit("user", f"u:{org}:{user}", self._per_user))
        if self._per_org:
            limits.append(Limit("organization", f"o:{org}", self._per_org))
        return limits

    async def hit(self, org: str, user: str) -> None:
        """Counts one request; ``RateLimited`` (with the seconds to wait) when a limit is
        exceeded. A refused request still counts, so hammering does not shorten the wait."""
        limits = self._limits(org, user)
        if not limits:
            return
        now = self._clock()
        current = int(now // self._window)
        elapsed = (now % self._window) / self._window
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for limit in limits:
                    key = f"{self._prefix}:{limit.key}"
                    pipe.incr(f"{key}:{current}")
                    pipe.expire(f"{key}:{current}", self._window * 2)
                    pipe.get(f"{key}:{current - 1}")
                replies = await pipe.execute()
        except Exception:
            log.warning("rate limiter unavailable; letting the request through", exc_info=True)
            return
        for i, limit in enumerate(limits):
            count, previous = int(replies[3 * i]), int(replies[3 * i + 2] or 0)
            weighted = count + previous * (1 - elapsed)
            if weighted > limit.per_window:
                metrics.RATE_LIMIT_REFUSALS.labels(limit.scope).inc()
                wait = self._retry_after(count, previous, elapsed, limit.per_window)
                raise RateLimited(
                    f"Too many requests for this {limit.scope}: at most {limit.per_window} per "
                    f"{self._window} s. Retry after {wait} s.",
                    retry_after=wait,
                )

    def _retry_after(self, count: int, previous: int, elapsed: float, limit: int) -> int:
        """Seconds until one more request would pass, if no other arrives meanwhile."""
        room = limit - 1  # what the weighted count must fall to, for the next request to pass
        if count <= room and previous:
            # Within this window the previous window's weight decays linearly.
            t = 1 - (room - count) / previous
            wait = (t - elapsed) * self._window
        else:
            # In the next window this window's count becomes the decaying "previous" one.
            t = max(0.0, 1 - room / count) if count else 0.0
            wait = (1 - elapsed + t) * self._window
        return max(1, math.ceil(wait))
