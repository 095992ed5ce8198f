"""The arq worker: runs recorded jobs, reconciles them with Redis, delivers the outbox.

``tutoring worker`` runs ``worker_for(runtime)``; ``arq workers.settings.WorkerSettings``
works too. Job handlers live in the tutoring pack (``app.tutoring.jobs.handlers``); this
module only connects them to arq.
"""

from __future__ import annotations

from typing import Any

from arq import Retry, cron
from arq.worker import Worker, func

from app.platform.jobs import NotDue, Transient
from app.platform.outbox import LoggingSender, Outbox
from app.platform.queue import RUN_JOB
from app.runtime import Runtime, build_runtime
from app.tutoring.jobs.handlers import handlers

RECONCILE_SECONDS = {0}  # once a minute
DELIVER_SECONDS = set(range(0, 60, 5))
# arq's own cap, above ours (MAX_ATTEMPTS in the jobs service decides when a job has failed):
# early deliveries re-deferred to their time count as tries too.
QUEUE_TRIES = 25


async def run_job(ctx: dict[str, Any], org: str, key: str) -> str:
    runtime: Runtime = ctx["runtime"]
    try:
        status = await runtime.entities.jobs.run(org, key, ctx["handlers"])
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
    outbox = Outbox(runtime.store, clock=runtime.entities.clock)
    return await outbox.deliver(ctx["sender"])


def worker_for(runtime: Runtime, *, burst: bool = False, **options: Any) -> Worker:
    if runtime.redis is None:
        raise RuntimeError("the worker needs Redis (REDIS_URL, or the embedded server)")
    return Worker(
        functions=[func(run_job, name=RUN_JOB)],
        cron_jobs=[
            cron(reconcile, second=RECONCILE_SECONDS, run_at_startup=True),
            cron(deliver, second=DELIVER_SECONDS),
        ],
        redis_pool=runtime.redis,
        ctx={"runtime": runtime, "handlers": handlers(runtime.entities), "sender": LoggingSender()},
        burst=burst,
        **{
            "handle_signals": not burst,
            "max_tries": QUEUE_TRIES,
            "poll_delay": 0.2 if burst else 0.5,
            **options,
        },
    )


async def _startup(ctx: dict[str, Any]) -> None:
    runtime = await build_runtime(with_queue=True)
    ctx.update(runtime=runtime, handlers=handlers(runtime.entities), sender=LoggingSender())


async def _shutdown(ctx: dict[str, Any]) -> None:
    await ctx["runtime"].close()


class WorkerSettings:
    """For ``arq workers.settings.WorkerSettings`` (REDIS_URL must be set then)."""

    functions = [func(run_job, name=RUN_JOB)]
    cron_jobs = [
        cron(reconcile, second=RECONCILE_SECONDS, run_at_startup=True),
        cron(deliver, second=DELIVER_SECONDS),
    ]
    on_startup = _startup
    on_shutdown = _shutdown
    max_tries = QUEUE_TRIES
