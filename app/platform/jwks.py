"""The identity provider's signing keys, fetched without ever holding up the event loop.

The API serves every organization from one asyncio loop, so a key lookup that waited on the
network would stall them all; and a token's ``kid`` is chosen by whoever sends it, so a lookup
that fetched for every unknown ``kid`` would let anyone, without a valid token, make us hammer
the provider and queue behind it. Hence:

* keys are cached by ``kid``, and a fetch is one task that every request needing it shares;
* an unknown ``kid`` may start at most one fetch per ``min_refresh_interval``;
* a request waits for a fetch at most ``wait`` seconds and is then refused (fail closed), while
  the fetch carries on in the background, bounded by its own ``fetch_timeout``;
* a fetch that fails (down, slow, not 200, too big, not a key set) is logged and changes
  nothing, so the keys already known keep working;
* a set older than ``max_age`` is refreshed in the background, so removed keys stop working.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)

MAX_KEYS = 100  # providers publish a handful; thousands would only cost us CPU on the loop


class JwksFetchError(Exception):
    """Why a fetch was discarded; only ever logged."""


class JwksKeySource:
    """RS256 verification keys from a JWKS URL, cached by ``kid``.

    ``clock`` (monotonic seconds) and ``transport`` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch_timeout: float = 5.0,
        wait: float = 0.5,
        min_refresh_interval: float = 60.0,
        max_age: float = 900.0,
        max_bytes: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        for name, value in (
            ("fetch_timeout", fetch_timeout),
            ("wait", wait),
            ("max_age", max_age),
            ("max_bytes", max_bytes),
        ):
            if value <= 0:
                raise ValueError(f"JWKS {name} must be positive")
        if min_refresh_interval < 0:
            raise ValueError("JWKS min_refresh_interval must not be negative")
        self.url = url
        self._fetch_timeout = fetch_timeout
        self._wait = wait
        self._min_interval = min_refresh_interval
        self._max_age = max_age
        self._max_bytes = max_bytes
        self._clock = clock
        self._transport = transport
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last fetch that replaced the keys
        self._attempted_at: float | None = None  # last fetch started, successful or not
        self._inflight: asyncio.Task[None] | None = None
        # Built here, at start-up: building one loads the CA bundle, which would stall the
        # loop for tens of milliseconds if done on the first request.
        self._client: httpx.AsyncClient | None = self._new_client()

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def has(self, kid: str) -> bool:
        """Whether the key is (still) published, without waiting for anything."""
        return kid in self._keys

    async def start(self) -> bool:
        """Fetches the keys before the first request needs them, waiting at most the fetch
        timeout. A failure is logged, not raised: the service should start (and answer its
        health probe) while the provider is down, refusing RS256 tokens until it is back.
        Returns whether any keys are known."""
        task = self._inflight or self._begin_fetch()
        await asyncio.wait({task})
        return bool(self._keys)

    async def get(self, kid: str) -> jwt.PyJWK | None:
        """The key for ``kid``, or None: never waits longer than ``wait`` seconds."""
        now = self._clock()
        key = self._keys.get(kid)
        if key is not None:
            if self._fetched_at is not None and now - self._fetched_at >= self._max_age:
                self._fetch_if_allowed(now)  # in the background; this request goes on
            return key
        task = self._fetch_if_allowed(now)
        if task is None:
            return None
        # asyncio.wait neither raises on timeout nor cancels the shared fetch.
        await asyncio.wait({task}, timeout=self._wait)
        return self._keys.get(kid)

    async def aclose(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _fetch_if_allowed(self, now: float) -> asyncio.Task[None] | None:
        """Joins the fetch in flight, or starts one unless one started too recently."""
        if self._inflight is not None:
            return self._inflight
        if self._attempted_at is not None and now - self._attempted_at < self._min_interval:
            return None
        return self._begin_fetch()

    def _begin_fetch(self) -> asyncio.Task[None]:
        self._attempted_at = self._clock()
        task = asyncio.get_running_loop().create_task(self._fetch(), name="jwks-fetch")
        self._inflight = task
        task.add_done_callback(self._fetch_done)
        return task

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch(self) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._fetch_timeout):
                body = await self._download()
            keys = self._parse(body)
        except TimeoutError:
            self._failed(f"no complete answer within {self._fetch_timeout:g} s")
        except JwksFetchError as exc:
            self._failed(str(exc))
        except Exception as exc:  # down, refused, reset, a key PyJWT chokes on: all the same
            self._failed(f"{type(exc).__name__}: {exc}")
        else:
            self._keys = keys
            self._fetched_at = self._clock()
            log.info(
                "JWKS from %s: %d signing keys (%s) in %.0f ms",
                self.url,
                len(keys),
                ", ".join(sorted(keys)),
                (time.perf_counter() - started) * 1000,
            )

    def _failed(self, reason: str) -> None:
        log.warning(
            "JWKS fetch from %s failed (%s); %d known key(s) stay in use; next try in %g s at the "
            "earliest",
            self.url,
            reason,
            len(self._keys),
            self._min_interval,
        )

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._fetch_timeout,
            transport=self._transport,
            follow_redirects=True,
            max_redirects=3,
            headers={"Accept": "application/json"},
        )

    async def _download(self) -> bytes:
        if self._client is None:
            raise JwksFetchError("the key source is closed")
        async with self._client.stream("GET", self.url) as response:
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise JwksFetchError(f"body of {declared} bytes exceeds {self._max_bytes}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise JwksFetchError(f"body exceeds {self._max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _parse(body: bytes) -> dict[str, jwt.PyJWK]:
        """Only RSA keys for RS256 signatures with a ``kid``: the verifier accepts nothing
        else, and a symmetric (``oct``) key published by mistake must never verify anything.
        """
        try:
            data: Any = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise JwksFetchError("the body is not JSON") from None
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise JwksFetchError("the body is not a JWK set")
        if len(entries) > MAX_KEYS:
            raise JwksFetchError(f"the set has {len(entries)} keys, more than {MAX_KEYS}")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid or entry.get("use") not in ("sig", None):
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
            if key.algorithm_name == "RS256":
                keys[kid] = key
        if not keys:
            raise JwksFetchError("the set has no RS256 signing key with a kid")
        return keys
