"""No template can stall the service: every organization shares one event loop per process, so
an admin's template renders in a worker process with hard limits, and the usual runaway
templates are refused within about a second while other requests keep being served.

Run as ``python -m tests.test_template_bounds``, this module is a hostile worker instead (see
the end), for the tests of what the server accepts from a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import psutil
import pytest

from app.platform import templates
from app.platform.errors import AppError
from app.platform.templates import DataSource, render
from app.tutoring.agent.prompt import render_prompt

MAX_GAP = 0.1  # the longest the event loop may go without running another task
REFUSED_WITHIN = 1.5  # "about a second", with room for a slow, busy CI machine

ATTACKS = {
    "two nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "three nested loops": "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}",
    "loop over a long string": "{% for c in 'a' * 20000 %}{% for d in 'b' * 20000 %}{% endfor %}{% endfor %}",
    "loop over lists": "{% for a in [1, 2, 3, 4] * 5000 %}{% for b in [1, 2] * 10000 %}{% endfor %}{% endfor %}",
    "loop over query results": "{% for i in range(10000) %}{% for s in entity.query('session') %}{% endfor %}{% endfor %}",
    "~ doubling in a set": "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "+ doubling of strings": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "+ doubling of lists": "{% set ns = namespace(s=[1]) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "* doubling of numbers": "{% set ns = namespace(n=2 ** 64) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "replace method blow-up": "{{ ('a' * 20000).replace('a', 'a' * 20000) | length }}",
    "replace filter blow-up": "{{ ('a' * 20000) | replace('a', 'a' * 20000) | length }}",
    "join of a repeated list": "{{ (['a' * 20000] * 20000) | join | length }}",
    "str.join of a repeated list": "{{ ''.join(['a' * 20000] * 20000) | length }}",
    "map over a repeated list": "{{ (['a' * 20000] * 20000) | map('upper') | list | length }}",
    "list of a huge range": "{{ range(10 ** 9) | list | length }}",
    "sum of repeated lists": "{{ ([['a'] * 20000] * 20000) | sum(start=[]) | length }}",
    "batch padding": "{{ [1] | batch(10 ** 9, 'x') | list | length }}",
    "list * n": "{{ ([1] * 20000) * 20000 }}",
    "macro doubling": "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}",
    "binary macro recursion": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "deep recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "recursive loop": "{% for x in range(100) recursive %}{% if loop.depth < 9 %}{{ loop(range(100)) }}{% endif %}{% endfor %}",
    "output size": "{% for i in range(5000) %}xxxxxxxxxx{% endfor %}",
}


@contextlib.asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """The gaps between ticks of a task that only sleeps 10 ms at a time: another request."""
    gaps: list[float] = [0.0]
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last - 0.01)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        yield gaps
    finally:
        done.set()
        await ticker


async def refusal(call: Awaitable[Any]) -> tuple[AppError, float, float]:
    """The error ``call`` is refused with, how long that took and the loop's longest gap."""
    async with loop_watch() as gaps:
        start = time.perf_counter()
        with pytest.raises(AppError) as caught:
            await call
        elapsed = time.perf_counter() - start
    return caught.value, elapsed, max(gaps)


def workers() -> list[psutil.Process]:
    """This process's running template workers."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if "app.platform.template_worker" in child.cmdline():
                found.append(child)
    return found


async def leftovers(pids: list[int], *, expected: int) -> list[int]:
    """Which of ``pids`` still exist, zombies included, once the ``expected`` ones remain
    (reaping a killed worker takes a moment)."""
    for _ in range(200):
        existing = [pid for pid in pids if psutil.pid_exists(pid)]
        if len(existing) <= expected:
            break
        await asyncio.sleep(0.01)
    return existing


@pytest.mark.parametrize("template", ATTACKS.values(), ids=ATTACKS.keys())
async def test_attacks_are_refused_within_a_second_while_others_are_served(
    world, template, frozen_heap
):
    admin = await world.as_role("admin")
    error, elapsed, gap = await refusal(render_prompt(admin, template))
    assert error.code == "BAD_USER_INPUT", error.message
    assert elapsed < REFUSED_WITHIN, (elapsed, error.message)
    assert gap < MAX_GAP


ESCAPES = {  # every operation passes the checks; the work or the memory in total does not
    "sorting in a loop": "{% for i in range(10000) %}{% set x = ('a' * 20000) | list | sort %}{% endfor %}",
    "printing shared rows": "{% set row = 'a' * 20000 %}{% set rows = [row] * 20000 %}{{ rows }}",
}
HARD_LIMITS = {
    "The template took longer than 1 s to render.",
    "The template used more than 256 MB to render.",
}


@pytest.mark.parametrize("template", ESCAPES.values(), ids=ESCAPES.keys())
async def test_what_escapes_the_checks_is_stopped_by_the_hard_limits(world, template, frozen_heap):
    admin = await world.as_role("admin")
    error, elapsed, gap = await refusal(render_prompt(admin, template))
    assert error.code == "BAD_USER_INPUT" and error.message in HARD_LIMITS
    assert elapsed < 2.0  # the 1 s it may take, then the kill
    assert gap < MAX_GAP


async def test_the_memory_limit_holds_and_is_configurable():
    shared_rows = ESCAPES["printing shared rows"]
    with pytest.raises(AppError, match=r"^The template used more than 256 MB to render\.$"):
        await render(shared_rows, {}, filters={}, seconds=30)  # time is not what stops it
    template = (
        "{% set row = 'a' * 20000 %}{% set rows = [row] * 2500 %}{{ rows | string | length }}"
    )
    assert await render(template, {}, filters={}) == "50010000"  # ~50 MB fits in 256 MB
    with pytest.raises(AppError, match=r"^The template used more than 48 MB to render\.$"):
        await render(template, {}, filters={}, memory_mb=48)


async def test_ordinary_loops_and_values_still_render():
    template = (
        "{% for i in range(4000) %}{% endfor %}{% set ns = namespace(s='') %}"
        "{% for i in range(100) %}{% set ns.s = ns.s ~ 'ab' %}{% endfor %}{{ ns.s | length }} "
        "{{ ['a', 'b'] | join(', ') }} {{ 'x' ~ 1 }} {{ [1, 2] + [3] }} {{ 'ab'.replace('b', 'c') }}"
    )
    assert await render(template, {}, filters={}) == "200 a, b x1 [1, 2, 3] ac"


class Slow(DataSource):
    template_methods = frozenset({"query"})

    def __init__(self, seconds: float = 0.0, gate: asyncio.Event | None = None) -> None:
        self.seconds, self.gate, self.calls = seconds, gate, 0

    async def query(self, type: str) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        if self.gate is not None:
            await self.gate.wait()
        return [{"type": type}]


async def test_time_spent_answering_data_calls_is_not_the_templates():
    source = Slow(seconds=0.7)
    template = "{{ entity.query('a')[0].type }}{{ entity.query('b')[0].type }}"
    assert await render(template, {"entity": source}, filters={}) == "ab"  # 1.4 s in the server


async def test_data_calls_per_render_are_bounded():
    source = Slow()
    template = "{% for i in range(100) %}{{ entity.query('a') }}{% endfor %}"
    with pytest.raises(AppError, match="more than 20 data calls") as caught:
        await render(template, {"entity": source}, filters={})
    assert caught.value.code == "BAD_USER_INPUT" and source.calls == 20


async def test_renders_at_once_are_bounded_so_memory_is_too():
    gate = asyncio.Event()
    source = Slow(gate=gate)
    renders = [
        asyncio.create_task(render("{{ entity.query('a') }}", {"entity": source}, filters={}))
        for _ in range(templates.MAX_CONCURRENT_RENDERS + 3)
    ]
    for _ in range(500):  # until every render that may run is waiting on its data call
        if source.calls == templates.MAX_CONCURRENT_RENDERS:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert source.calls == templates.MAX_CONCURRENT_RENDERS
    running = [p for p in workers() if p.status() != psutil.STATUS_ZOMBIE]
    assert len(running) <= templates.MAX_CONCURRENT_RENDERS + 1  # and one warm
    gate.set()
    assert await asyncio.gather(*renders) == ["[{'type': 'a'}]"] * len(renders)


async def test_workers_never_see_the_servers_secrets(monkeypatch):
    secret = "a-secret-that-must-stay-in-the-server-0123456789"
    monkeypatch.setenv("AUTH_DEV_SECRET", secret)

    class Spy(DataSource):
        template_methods = frozenset({"environ"})

        async def environ(self) -> list[dict[str, str]]:
            environs = []  # the rendering worker's (it is blocked on us) and the warm one's
            for worker in workers():
                with contextlib.suppress(psutil.NoSuchProcess):  # the last render's, exiting
                    environs.append(worker.environ())
            return environs

    await render("{{ 1 }}", {}, filters={})  # the warm worker now started after setenv
    out = await render(
        "{% for e in spy.environ() %}{{ e | tojson }}\n{% endfor %}", {"spy": Spy()}, filters={}
    )
    environs = [json.loads(line) for line in out.splitlines()]
    assert len(environs) >= 2
    for environ in environs:
        assert "AUTH_DEV_SECRET" not in environ and secret not in json.dumps(environ)
        assert set(environ) <= {"PATH", "PYTHONPATH", "LC_CTYPE"}
    attempt = "{{ cycler.__init__.__globals__.os.environ }}"
    with pytest.raises(AppError, match="not allowed"):
        await render(attempt, {}, filters={})


async def test_no_worker_outlives_its_render_however_it_ends(monkeypatch):
    spawned: list[int] = []
    spawn = templates._Workers._spawn

    def recorded(pool: templates._Workers) -> Any:
        proc = spawn(pool)
        spawned.append(proc.pid)
        return proc

    monkeypatch.setattr(templates._Workers, "_spawn", recorded)
    templates._workers.close()  # so every worker from here on is one we saw start
    slow = ESCAPES["sorting in a loop"]
    for template in ("ok", ATTACKS["deep recursion"], ATTACKS["output size"], slow):
        with contextlib.suppress(AppError):
            await render(template, {}, filters={})
    assert await leftovers(spawned, expected=1) == spawned[-1:]  # only the warm one is left
    render_task = asyncio.create_task(render(slow, {}, filters={}))
    await asyncio.sleep(0.4)
    assert await leftovers(spawned, expected=2) == spawned[-2:]  # rendering, and a warm one
    render_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await render_task
    assert await leftovers(spawned, expected=1) == spawned[-1:]
    assert len(spawned) == 6 and [p.pid for p in workers()] == spawned[-1:]


@pytest.fixture
def hostile_workers(monkeypatch) -> Iterator[templates._Workers]:
    """Workers that run this module as their main program; the server must bound them."""
    pool = templates._Workers()
    monkeypatch.setattr(templates, "_WORKER", "tests.test_template_bounds")
    monkeypatch.setattr(templates, "_workers", pool)
    yield pool
    pool.close()


@pytest.mark.parametrize("attack", ["flood", "undeclared call", "garbage"])
async def test_the_server_takes_only_bounded_well_formed_messages(hostile_workers, attack):
    rss = psutil.Process().memory_info().rss
    error, _, gap = await refusal(render(attack, {"entity": Slow()}, filters={}))
    assert error.code == "BAD_USER_INPUT" and gap < MAX_GAP  # (this worker starts slowly)
    assert psutil.Process().memory_info().rss - rss < 64 * 2**20  # it sent 256 MB


def _hostile_worker() -> None:
    job = json.loads(sys.stdin.buffer.readline())
    out = sys.stdout.buffer
    out.write(b'{"started":true}\n')
    if job["source"] == "flood":
        with contextlib.suppress(BrokenPipeError):
            for _ in range(256):
                out.write(b"x" * 2**20)
    elif job["source"] == "undeclared call":
        out.write(b'{"call":["entity","__init__"],"args":[],"kwargs":{}}\n')
    else:
        out.write(b"[1, 2]\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    _hostile_worker()
