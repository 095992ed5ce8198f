"""The JWKS key source against a real identity provider on loopback that can be made slow,
down or broken: no request waits long, the provider is not hammered, the loop never stalls,
and keys already known keep working whatever the provider does."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.config import Settings
from app.graphql.app import create_app
from app.platform.auth import TokenVerifier
from app.platform.errors import ErrorCode, Unauthenticated
from app.platform.jwks import JwksKeySource
from app.runtime import build_runtime

ISSUER = "https://idp.test"
AUDIENCE = "tutoring"
KEYS = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}


def _jwk(kid: str) -> dict:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEYS[kid].public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


def rs256(kid: str, *, signer: str | None = None, **claims: object) -> str:
    payload = {
        "sub": "u-t1",
        "org_id": "org-a",
        "roles": ["teacher"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": datetime.now(UTC) + timedelta(hours=1),
        **claims,
    }
    return jwt.encode(payload, KEYS[signer or kid], algorithm="RS256", headers={"kid": kid})


BROKEN: dict[str, Callable[[], Response]] = {
    "garbage": lambda: Response(b'{"keys": [{"kty": "RSA", ', media_type="application/json"),
    "html": lambda: Response(b"<html>maintenance</html>", media_type="text/html"),
    "huge": lambda: Response(b'{"keys": [], "pad": "' + b"x" * 2_000_000 + b'"}'),
    "huge_chunked": lambda: StreamingResponse(b"x" * 65536 for _ in range(40)),  # no length
    "http_500": lambda: Response(b"boom", status_code=500),
    "empty": lambda: JSONResponse({"keys": []}),
}


class Idp:
    """The provider's JWKS endpoint: ``published`` kids, a ``delay`` and a failure ``mode``."""

    def __init__(self) -> None:
        self.published = ["k1"]
        self.extra: list[dict] = []  # served as they are, after the published keys
        self.delay = 0.0
        self.mode = "ok"
        self.hits = 0
        self.url = ""
        self._release = asyncio.Event()  # ends pending delays at teardown
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.delay)
        if self.mode in BROKEN:
            return BROKEN[self.mode]()
        return JSONResponse({"keys": [*(_jwk(kid) for kid in self.published), *self.extra]})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/.well-known/jwks.json", self.jwks)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"

    async def stop(self) -> None:
        """Afterwards the port refuses connections: the provider is down."""
        self._release.set()
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    server = Idp()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_verifier(idp: Idp):
    """Verifiers on the provider's URL, closed before the provider stops."""
    made: list[TokenVerifier] = []

    def make(clock=time.monotonic, **timings: float) -> TokenVerifier:
        source = JwksKeySource(idp.url, clock=clock, **timings)
        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, key_source=source)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


@contextlib.asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """How late each 10 ms sleep woke up: the longest is the worst stall of the loop."""
    lags: list[float] = []
    gc.collect()  # a full collection of what earlier tests left behind is not what we measure

    async def tick() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    task = asyncio.create_task(tick())
    try:
        yield lags
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Background work (a refresh, its log line) offers nothing to await: poll briefly."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


async def launch(verifier: TokenVerifier, tokens: list[str]) -> list[tuple[float, object]]:
    """All at once, but started 20 at a time so the test's own burst of task creation is not
    what the loop watch measures."""
    started = []
    for i in range(0, len(tokens), 20):
        started += [asyncio.create_task(timed_verify(verifier, t)) for t in tokens[i : i + 20]]
        await asyncio.sleep(0.002)
    return await asyncio.gather(*started)


async def timed_verify(verifier: TokenVerifier, token: str) -> tuple[float, object]:
    started = time.perf_counter()
    try:
        outcome: object = await verifier.verify(token)
    except Unauthenticated as exc:
        outcome = exc
    return time.perf_counter() - started, outcome


def _refused(outcome: object) -> bool:
    return isinstance(outcome, Unauthenticated) and outcome.code is ErrorCode.UNAUTHENTICATED


async def test_token_signed_with_a_published_key_is_accepted(make_verifier, idp):
    verifier = make_verifier()
    await verifier.start()
    identity = await verifier.verify(rs256("k1"))
    assert (identity.user_id, identity.organization_id) == ("u-t1", "org-a")
    for bad in (
        rs256("k1", iss="https://evil.test"),
        rs256("k1", aud="another-app"),
        rs256("k1", signer="k2"),  # right kid, wrong signature
        jwt.encode({"sub": "u", "exp": 9999999999}, KEYS["k1"], algorithm="RS256"),  # no kid
    ):
        with pytest.raises(Unauthenticated):
            await verifier.verify(bad)
    assert idp.hits == 1


async def test_first_token_loads_the_keys_without_a_start(make_verifier, idp):
    verifier = make_verifier()
    assert (await verifier.verify(rs256("k1"))).user_id == "u-t1"
    assert idp.hits == 1


async def test_rotated_key_is_accepted_once_the_refresh_interval_has_passed(make_verifier, idp):
    clock = FakeMonotonic()
    verifier = make_verifier(clock=clock, min_refresh_interval=60)
    await verifier.start()
    idp.published = ["k1", "k2"]  # the provider rotates in a new key
    with pytest.raises(Unauthenticated):
        await verifier.verify(rs256("k2"))  # too soon after the last fetch to ask again
    assert idp.hits == 1
    clock.now += 61
    assert (await verifier.verify(rs256("k2"))).user_id == "u-t1"
    assert (await verifier.verify(rs256("k1"))).user_id == "u-t1"
    assert idp.hits == 2


async def test_a_withdrawn_key_stops_working_after_the_max_age(make_verifier, idp):
    clock = FakeMonotonic()
    verifier = make_verifier(clock=clock, min_refresh_interval=60, max_age=600)
    source = verifier.key_source
    assert source is not None
    await verifier.start()
    idp.published = ["k2"]
    clock.now += 601
    # The stale set still answers at once; the refresh runs behind it.
    assert (await verifier.verify(rs256("k1"))).user_id == "u-t1"
    await eventually(lambda: source.kids == {"k2"})
    with pytest.raises(Unauthenticated):
        await verifier.verify(rs256("k1"))
    assert (await verifier.verify(rs256("k2"))).user_id == "u-t1"
    assert idp.hits == 2


async def test_unknown_kid_flood_against_a_slow_provider(make_verifier, idp, caplog, frozen_heap):
    """200 tokens with made-up kids while the provider takes 5 s: all are refused in well
    under a second, they share one fetch, and the loop keeps ticking."""
    verifier = make_verifier(fetch_timeout=2.0, wait=0.5, min_refresh_interval=60)
    idp.delay = 5.0
    tokens = [rs256(secrets.token_hex(8), signer="k1") for _ in range(200)]
    async with loop_watch() as lags:
        results = await launch(verifier, tokens)
        assert all(_refused(outcome) for _, outcome in results)
        assert max(elapsed for elapsed, _ in results) < 1.0
        assert idp.hits == 1
        # Once the shared fetch has given up, a second wave is refused without asking again.
        await asyncio.sleep(2.2)
        again = await launch(verifier, tokens[:50])
    assert all(_refused(outcome) for _, outcome in again)
    assert max(elapsed for elapsed, _ in again) < 0.5
    assert idp.hits == 1
    assert max(lags) < 0.1, f"the event loop stalled for {max(lags) * 1000:.0f} ms"
    assert any("JWKS fetch" in r.message and "failed" in r.message for r in caplog.records)


async def test_known_keys_keep_working_while_a_slow_refresh_runs(make_verifier, idp):
    clock = FakeMonotonic()
    verifier = make_verifier(clock=clock, fetch_timeout=3.0, wait=0.5, min_refresh_interval=60)
    await verifier.start()
    idp.delay = 5.0
    clock.now += 61  # unknown kids may now ask again, once
    unknown = [rs256(secrets.token_hex(8), signer="k1") for _ in range(200)]
    known = [rs256("k1") for _ in range(20)]
    async with loop_watch() as lags:
        refused, accepted = await asyncio.gather(launch(verifier, unknown), launch(verifier, known))
    assert all(_refused(outcome) for _, outcome in refused)
    assert max(elapsed for elapsed, _ in refused) < 1.0
    assert all(not isinstance(outcome, Exception) for _, outcome in accepted)
    assert max(elapsed for elapsed, _ in accepted) < 0.5
    assert idp.hits == 2  # the start-up prefetch and one refresh
    assert max(lags) < 0.1


@pytest.mark.parametrize(
    "failure", ["down", "garbage", "html", "huge", "huge_chunked", "http_500", "empty", "slow"]
)
async def test_a_failing_provider_refuses_new_kids_and_keeps_the_known(
    make_verifier, idp, caplog, failure
):
    clock = FakeMonotonic()
    verifier = make_verifier(clock=clock, fetch_timeout=1.0, wait=0.5, min_refresh_interval=60)
    await verifier.start()
    idp.published = ["k1", "k2"]
    if failure == "down":
        await idp.stop()
    elif failure == "slow":
        idp.delay = 5.0
    else:
        idp.mode = failure
    clock.now += 61
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.platform.jwks"):
        elapsed, outcome = await timed_verify(verifier, rs256("k2"))
        assert _refused(outcome) and elapsed < 1.0
        await eventually(lambda: bool(caplog.records))  # the fetch fails later, then logs
    assert "failed" in caplog.records[0].getMessage()
    assert "1 known key(s) stay in use" in caplog.records[0].getMessage()
    assert (await verifier.verify(rs256("k1"))).user_id == "u-t1"
    hits = idp.hits
    with pytest.raises(Unauthenticated):
        await verifier.verify(rs256("k2"))  # no second try within the interval
    assert idp.hits == hits


async def test_only_rs256_signing_keys_are_taken(make_verifier, idp):
    """A symmetric key, an encryption key or a key meant for another algorithm in the set
    must not verify anything here; the set's usable keys still do."""
    idp.extra = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXRoYXQtaXMtbG9uZy1lbm91Z2gtZm9yLWhz"},
        {**_jwk("k2"), "kid": "k2-enc", "use": "enc"},
        {**_jwk("k2"), "kid": "k2-rs512", "alg": "RS512"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
        "not a key",
    ]
    verifier = make_verifier()
    assert await verifier.key_source.start()
    assert verifier.key_source.kids == {"k1"}
    for kid in ("k2-enc", "k2-rs512"):
        with pytest.raises(Unauthenticated):
            await verifier.verify(rs256(kid, signer="k2"))
    assert (await verifier.verify(rs256("k1"))).user_id == "u-t1"


async def test_shutdown_does_not_wait_for_a_slow_provider(make_verifier, idp):
    verifier = make_verifier(fetch_timeout=10.0)
    idp.delay = 5.0
    with pytest.raises(Unauthenticated):
        await verifier.verify(rs256("k1"))  # the fetch it started is still running
    started = time.perf_counter()
    await verifier.aclose()
    assert time.perf_counter() - started < 0.5


async def raw_request(port: int, request: bytes) -> tuple[float, int, bytes]:
    """One HTTP/1.1 exchange over a bare socket: the client costs next to nothing, so the
    time measured is the server's."""
    started = time.perf_counter()
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        response = await reader.read()  # the server closes: the request asks it to
        writer.close()
    elapsed = time.perf_counter() - started
    head, _, body = response.partition(b"\r\n\r\n")
    return elapsed, int(head.split(b" ", 2)[1]), body


def _post(token: str) -> bytes:
    body = b'{"query": "{ __typename }"}'
    return (
        b"POST /graphql HTTP/1.1\r\nHost: api\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"


async def test_healthz_answers_while_unknown_kids_flood_the_api(store, idp, frozen_heap):
    """The issue's hostile test, over HTTP: every flood request is a 401 UNAUTHENTICATED in
    under a second, and /healthz stays fast at p99 throughout."""
    settings = Settings(auth_jwks_url=idp.url, auth_issuer=ISSUER, auth_audience=AUDIENCE)
    runtime = await build_runtime(settings, store=store)
    idp.delay = 5.0
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    requests = [_post(rs256(secrets.token_hex(8), signer="k1")) for _ in range(200)]
    flood_done = asyncio.Event()
    health: list[float] = []

    async def probe() -> None:
        while not flood_done.is_set():
            elapsed, status, _ = await raw_request(port, HEALTHZ)
            assert status == 200
            health.append(elapsed)
            await asyncio.sleep(0.01)

    async def flood() -> list[tuple[float, int, bytes]]:
        """Waves of 10 every 50 ms for a second: a sustained attack, not a single burst."""
        waves = []
        for i in range(0, len(requests), 10):
            wave = requests[i : i + 10]
            waves.append(asyncio.gather(*(raw_request(port, r) for r in wave)))
            await asyncio.sleep(0.05)
        return [result for wave in await asyncio.gather(*waves) for result in wave]

    try:
        probes = [asyncio.create_task(probe()) for _ in range(2)]  # enough samples for a p99
        results = await flood()
        flood_done.set()
        await asyncio.gather(*probes)
    finally:
        server.should_exit = True
        await task
        await runtime.close()
    assert {status for _, status, _ in results} == {401}
    codes = {json.loads(body)["errors"][0]["extensions"]["code"] for _, _, body in results}
    assert codes == {"UNAUTHENTICATED"}
    assert max(elapsed for elapsed, _, _ in results) < 1.0
    assert idp.hits == 1
    p99 = sorted(health)[math.ceil(len(health) * 0.99) - 1]
    assert len(health) >= 50 and p99 < 0.1, f"/healthz p99 {p99 * 1000:.0f} ms"
