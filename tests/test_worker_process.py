"""The worker as its own process, as a container runs it: ``arq workers.settings.WorkerSettings``.

What an operator relies on: the worker finds Redis through ``REDIS_URL``; ``arq --check``
says whether it is alive; ``docker stop`` (SIGTERM) or Ctrl-C (SIGINT) ends it with status 0
and no traceback; a job running at that moment either finishes or goes back to the queue and
runs again on the next worker, never lost.

The worker runs on the in-memory store (no MongoDB here) against the test session's Redis,
in a database of its own so the other tests' queues are not touched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobStatus
from arq.worker import func

from workers.settings import HEALTH_CHECK_KEY, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
ARQ = Path(sys.executable).parent / "arq"
SETTINGS = "workers.settings.WorkerSettings"
# What `tutoring worker` does (app/cli.py), without its command line: the worker inside an
# event loop the program owns, where arq's stop used to escape as a CancelledError.
IN_OWN_LOOP = """
import asyncio
from app.runtime import build_runtime
from workers.settings import worker_for

async def main():
    runtime = await build_runtime(with_queue=True)
    try:
        await worker_for(runtime).async_run()
    finally:
        await runtime.close()

asyncio.run(main())
"""
WORKER_DB = 13
STARTED, FINISHED = "test:slow:started", "test:slow:finished"


async def _slow(ctx: dict[str, Any], seconds: float) -> str:
    """A job that takes its time on the first try and none on a retry."""
    redis: ArqRedis = ctx["redis"]
    await redis.set(STARTED, ctx["job_try"])
    if ctx["job_try"] == 1:
        await asyncio.sleep(seconds)
    await redis.set(FINISHED, ctx["job_try"])
    return "finished"


def _with_slow_job(**overrides: Any) -> dict[str, Any]:
    """The real WorkerSettings plus the ``slow`` job (arq takes a dict as settings too)."""
    settings = {k: v for k, v in vars(WorkerSettings).items() if not k.startswith("_")}
    settings["functions"] = [*WorkerSettings.functions, func(_slow, name="slow")]
    return {**settings, **overrides}


SLOW_JOB_SETTINGS = _with_slow_job()
SHORT_WAIT_SETTINGS = _with_slow_job(job_completion_wait=1)


@pytest.fixture
async def worker_redis(redis_url: str) -> AsyncIterator[tuple[str, ArqRedis]]:
    """A URL of an emptied Redis database for the worker, and a connection to it."""
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{WORKER_DB}"))
    pool = await create_pool(RedisSettings.from_dsn(url))
    await pool.flushdb()
    yield url, pool
    await pool.flushdb()
    await pool.aclose()


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "TUTORING_ENV"}}
    env["REDIS_URL"] = url
    return env


async def _check(url: str) -> int:
    """The exit status of ``arq --check``, as a container health check runs it."""
    proc = await asyncio.create_subprocess_exec(
        ARQ, "--check", SETTINGS, cwd=ROOT, env=_env(url),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return await proc.wait()


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text()

    async def stop(self, signum: signal.Signals) -> int:
        self.proc.send_signal(signum)
        return await asyncio.wait_for(self.proc.wait(), 30)


def _arq(settings: str = SETTINGS) -> list[str | Path]:
    return [ARQ, settings]


@asynccontextmanager
async def _worker(
    redis: tuple[str, ArqRedis], log: Path, command: list[str | Path]
) -> AsyncIterator[Worker]:
    """The worker as a process of its own, once ``arq --check`` says it is alive."""
    url, pool = redis
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=_env(url), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    worker = Worker(proc, log)
    try:
        for _ in range(300):  # the key is cheap to poll; `arq --check` then confirms it
            if proc.returncode is not None:
                pytest.fail(f"the worker exited with {proc.returncode}:\n{worker.output()}")
            if await pool.exists(HEALTH_CHECK_KEY):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"the worker never wrote {HEALTH_CHECK_KEY}:\n{worker.output()}")
        assert await _check(url) == 0, worker.output()
        yield worker
    finally:
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def _assert_quiet(worker: Worker) -> None:
    output = worker.output()
    assert "Traceback" not in output, output
    assert "CancelledError" not in output, output


async def _wait_for(pool: ArqRedis, key: str) -> None:
    for _ in range(200):
        if await pool.exists(key):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{key} was never set")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize(
    "command",
    [_arq(), [sys.executable, "-c", IN_OWN_LOOP]],
    ids=["arq-WorkerSettings", "worker_for-in-own-loop"],
)
async def test_an_idle_worker_stops_cleanly_and_its_health_check_then_fails(
    worker_redis: tuple[str, ArqRedis],
    tmp_path: Path,
    signum: signal.Signals,
    command: list[str | Path],
) -> None:
    url = worker_redis[0]
    async with _worker(worker_redis, tmp_path / "worker.log", command) as worker:
        assert await worker.stop(signum) == 0, worker.output()
        _assert_quiet(worker)
    assert await _check(url) == 1  # the key is withdrawn on the way out


async def test_a_running_job_finishes_before_the_worker_exits(
    worker_redis: tuple[str, ArqRedis], tmp_path: Path
) -> None:
    pool = worker_redis[1]
    settings = _arq(f"{__name__}.SLOW_JOB_SETTINGS")
    async with _worker(worker_redis, tmp_path / "worker.log", settings) as worker:
        job = await pool.enqueue_job("slow", 1.0, _job_id="slow-finishes")
        assert job is not None
        await _wait_for(pool, STARTED)
        assert await worker.stop(signal.SIGTERM) == 0, worker.output()
        _assert_quiet(worker)
    assert await pool.get(FINISHED) == b"1"
    assert await job.status() is JobStatus.complete
    assert await job.result(timeout=1) == "finished"


async def test_a_job_cut_short_by_shutdown_goes_back_to_the_queue_and_runs_again(
    worker_redis: tuple[str, ArqRedis], tmp_path: Path
) -> None:
    pool = worker_redis[1]
    short_wait = _arq(f"{__name__}.SHORT_WAIT_SETTINGS")
    async with _worker(worker_redis, tmp_path / "first.log", short_wait) as worker:
        job = await pool.enqueue_job("slow", 60.0, _job_id="slow-requeued")
        assert job is not None
        await _wait_for(pool, STARTED)
        assert await worker.stop(signal.SIGTERM) == 0, worker.output()
        _assert_quiet(worker)
    assert not await pool.exists(FINISHED)
    assert await job.status() is JobStatus.queued

    again = _arq(f"{__name__}.SLOW_JOB_SETTINGS")
    async with _worker(worker_redis, tmp_path / "second.log", again) as worker:
        assert await Job("slow-requeued", pool).result(timeout=20) == "finished"
        assert await pool.get(FINISHED) == b"2"  # the second try
        assert await worker.stop(signal.SIGTERM) == 0, worker.output()
        _assert_quiet(worker)
