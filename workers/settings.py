"""The arq worker: runs recorded jobs, reconciles them with Redis, delivers the outbox.

Two ways to run it, with the same settings:

- ``tutoring worker`` runs ``worker_for(runtime)`` on the runtime's Redis connection;
- ``arq workers.settings.WorkerSettings`` connects to ``REDIS_URL`` (arq's default,
  ``redis://localhost:6379``, when unset) and builds the runtime from the environment.

Shutdown: on SIGINT or SIGTERM the worker stops taking jobs, lets running ones finish for up
to ``JOB_COMPLETION_WAIT`` seconds, then cancels what is left; a cancelled job goes back to
the queue and runs again (handlers are idempotent). The process then exits with status 0 and
no traceback. Keep a container's stop grace period above ``JOB_COMPLETION_WAIT``.

Liveness: while it polls, the worker refreshes the Redis key ``HEALTH_CHECK_KEY`` every
``HEALTH_CHECK_INTERVAL`` seconds with a time-to-live one second longer, so
``arq --check workers.settings.WorkerSettings`` (exit status 0 when the key is there) fails
within seconds of the worker stopping or hanging. The key is shared by all workers on one
Redis: it says that some worker is alive.

Job handlers live in the tutoring pack (``app.tutoring.jobs.handlers``); this module only
connects them to arq.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from arq import Retry, cron
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker, func

from app.platform.jobs import NotDue, Transient
from app.platform.metrics import Telemetry, start_telemetry
from app.platform.outbox import LoggingSender, Outbox
from app.platform.queue import RUN_JOB, ArqQueue
from app.runtime import Runtime, build_runtime
from app.tutoring.jobs.handlers import handlers

RECONCILE_SECONDS = {0}  # once a minute
DELIVER_SECONDS = set(range(0, 60, 5))
# arq's own cap, above ours (MAX_ATTEMPTS in the jobs service decides when a job has failed):
# early deliveries re-deferred to their time count as tries too.
QUEUE_TRIES = 25
# Jobs one worker runs at once; more wait in the queue for this or another worker.
MAX_JOBS = 10
# Seconds a stopping worker waits for running jobs. Below Docker's default stop grace period
# (10 s), so a plain `docker stop` does not kill jobs that were about to finish.
JOB_COMPLETION_WAIT = 8
# The liveness key `arq --check` reads, and how often a polling worker refreshes it (arq
# keeps it for one second longer, so a stuck or stopped worker's key is gone in seconds).
HEALTH_CHECK_KEY = "tutoring:worker:health-check"
HEALTH_CHECK_INTERVAL = 10
# The resource's service.name of the worker's spans (the API's is "tutoring-api").
WORKER_SERVICE_NAME = "tutoring-worker"


def redis_settings_from_env() -> RedisSettings:
    """``REDIS_URL`` as arq's settings; arq's default (localhost:6379) when unset, as arq
    itself would do, rather than an embedded server the API could not see."""
    url = os.environ.get("REDIS_URL")
    return RedisSettings.from_dsn(url) if url else RedisSettings()


async def run_job(ctx: dict[str, Any], org: str, key: str, retries: int = 0) -> str:
    """``retries``: how often an admin had retried the job when this message was sent."""
    runtime: Runtime = ctx["runtime"]
    try:
        status = await runtime.entities.jobs.run(org, key, ctx["handlers"], retries)
    except NotDue as early:
        raise Retry(defer=early.delay) from None
    except Transient:
        # Back off 2, 4, 8 ... seconds (capped) and let arq run it again.
        raise Retry(defer=min(2 ** ctx.get("job_try", 1), 300)) from None
    return status.value


async def reconcile(ctx: dict[str, Any]) -> int:
    return await ctx["runtime"].entities.jobs.reconcile()


async def deliver(ctx: dict[str, Any]) -> int:
    runtime: Runtime = ctx["runtime"]
    outbox = Outbox(runtime.store, clock=runtime.entities.clock, changes=runtime.entities.changes)
    return await outbox.deliver(ctx["sender"])


def _functions() -> list[Function]:
    return [func(run_job, name=RUN_JOB)]


def _cron_jobs() -> list[CronJob]:
    """Fresh each time: a cron job remembers its next run, which one worker must not take
    from another."""
    return [
        cron(reconcile, second=RECONCILE_SECONDS, run_at_startup=True),
        cron(deliver, second=DELIVER_SECONDS),
    ]


class TutoringWorker(Worker):
    """arq's ``Worker`` whose ``async_run`` ends quietly when a signal stopped it.

    arq's signal handler cancels the worker's main task. ``Worker.run`` (the ``arq`` command)
    swallows that cancellation, but ``async_run`` (used by ``tutoring worker`` inside its own
    event loop) lets it escape, and ``asyncio.run`` then prints a ``CancelledError``
    traceback and exits non-zero. Here a cancellation that did not come from the caller is a
    normal end. Either way the running jobs are settled first, so the caller may close the
    Redis connection and the store they use.
    """

    async def async_run(self) -> None:
        try:
            await super().async_run()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            from_caller = task is not None and task.cancelling() > 0
            await self._settle()
            if from_caller:
                raise
            return
        await self._settle()

    async def _settle(self) -> None:
        """Cancels unfinished jobs (arq returns them to the queue), waits until arq has
        recorded that, and withdraws the health key so `arq --check` fails at once."""
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pool.delete(self.health_check_key)


def worker_for(runtime: Runtime, *, burst: bool = False, **options: Any) -> Worker:
    if runtime.redis is None:
        raise RuntimeError("the worker needs Redis (REDIS_URL, or the embedded server)")
    return TutoringWorker(
        functions=_functions(),
        cron_jobs=_cron_jobs(),
        redis_pool=runtime.redis,
        ctx={"runtime": runtime, "handlers": handlers(runtime.entities), "sender": LoggingSender()},
        burst=burst,
        **{
            "handle_signals": not burst,
            "job_completion_wait": JOB_COMPLETION_WAIT,
            "max_jobs": MAX_JOBS,
            "max_tries": QUEUE_TRIES,
            "health_check_key": HEALTH_CHECK_KEY,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            "poll_delay": 0.2 if burst else 0.5,
            **options,
        },
    )


async def _startup(ctx: dict[str, Any]) -> None:
    """Builds the runtime from the environment and hands its job service the worker's own
    Redis connection, so jobs are queued where this worker polls (never an embedded server)
    and what they change is announced to the API processes' live subscribers."""
    runtime = await build_runtime()
    ctx["telemetry"] = worker_telemetry(runtime)
    runtime.redis = ctx["redis"]
    runtime.entities.jobs.queue = ArqQueue(runtime.redis, runtime.entities.clock)
    runtime.attach_live(runtime.redis)  # what jobs change reaches live subscribers
    ctx.update(runtime=runtime, handlers=handlers(runtime.entities), sender=LoggingSender())


def worker_telemetry(runtime: Runtime) -> Telemetry:
    """The worker's traces (``OTEL_EXPORTER_OTLP_ENDPOINT``) and, with ``METRICS_PORT``, its
    ``/metrics`` on that port (job runs, outbox depth and failures): a worker serves no HTTP
    otherwise. ``tutoring worker`` calls this too; ``close()`` it at exit."""
    settings = runtime.settings
    return start_telemetry(
        WORKER_SERVICE_NAME,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        metrics_port=settings.metrics_port,
        metrics_token=settings.metrics_token,
    )


async def _shutdown(ctx: dict[str, Any]) -> None:
    telemetry: Telemetry | None = ctx.pop("telemetry", None)
    if telemetry is not None:  # the last spans go out; a thread keeps the loop free
        await asyncio.to_thread(telemetry.close)
    runtime: Runtime | None = ctx.get("runtime")
    if runtime is None:  # stopped before start-up finished
        return
    runtime.redis = None  # arq closes its own connection after this hook
    await runtime.close()


class WorkerSettings:
    """For ``arq workers.settings.WorkerSettings`` and ``arq --check`` of the same."""

    functions = _functions()
    cron_jobs = _cron_jobs()
    redis_settings = redis_settings_from_env()
    on_startup = _startup
    on_shutdown = _shutdown
    max_tries = QUEUE_TRIES
    max_jobs = MAX_JOBS
    job_completion_wait = JOB_COMPLETION_WAIT
    health_check_key = HEALTH_CHECK_KEY
    health_check_interval = HEALTH_CHECK_INTERVAL
