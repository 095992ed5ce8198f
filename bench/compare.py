"""The project against bare Strawberry, side by side: requests per second and server CPU per
request for a teacher's page and an admin's page of 50 sessions.

    .venv/bin/python bench/compare.py [--sessions 60] [--rounds 9] [--seconds 4]

Four servers run at once, each in its own process under the same uvicorn settings (the
project's, from ``app.graphql.server``), each seeded with the same organization:

- ``project``: the service as deployed, minus Redis (rate limits off: one benchmark user
  would exceed them) -- authentication, actor, scopes, masks, cost limits, everything;
- ``bare``: bare Strawberry serving the same shape from a Python list, default settings;
- ``bare+caches``: the same with Strawberry's parser and validation caches;
- ``bare-store``: bare Strawberry reading the same in-memory store with DataLoaders and the
  same caches, no auth and no permissions.

Rounds are interleaved: every server and page once per round, the project run between the
two baselines its targets name, the order reversed every other round, so that a slow stretch
of a shared machine does not always fall on the same server. Each server's medians are
reported; ratios are paired: each round's project figure over the same round's baseline
figure, then the median of those, with their range. The load comes from ``wrk`` when it is
installed (Debian's package ``wrk``), otherwise from a Python client in a
separate process; server CPU comes from ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

KINDS = ("project", "bare", "bare+caches", "bare-store")
RUN_ORDER = ("bare", "project", "bare-store", "bare+caches")  # the project next to both targets
PAGES = {
    "teacher": "{ sessions(first: 50, orderBy: [{field: START_TIME}]) { totalCount edges "
    "{ node { id startTime status subject student { name } } } } }",
    "admin": "{ sessions(first: 50, orderBy: [{field: START_TIME}]) { totalCount edges "
    "{ node { id startTime status subject student { name } teacher { name } "
    "guardian { name } } } } }",
}
TARGETS = {  # (page, baseline) -> the most the project's CPU per request may be, as a ratio
    ("teacher", "bare"): 2.0,
    ("teacher", "bare-store"): 1.25,
    ("admin", "bare"): 2.5,
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPUS = sorted(os.sched_getaffinity(0))


def _pin(role: str) -> None:
    """Servers on the last CPU, the load tool on the others: with both on every CPU, the
    scheduler's moves put run-to-run noise of +-15% into CPU per request on small machines.
    Only one server is under load at a time (rounds are sequential), so sharing is fair."""
    if len(CPUS) >= 2:
        os.sched_setaffinity(0, {CPUS[-1]} if role == "server" else set(CPUS[:-1]))


# -- a server ----------------------------------------------------------------------------------


async def _serve(kind: str, port: int, sessions: int, teacher_sessions: int) -> None:
    from app.config import Settings
    from app.graphql.app import create_app
    from app.graphql.server import Server, server_config
    from app.runtime import build_runtime
    from bench import bare
    from bench.seed import SECRET, seed

    _pin("server")
    settings = Settings(
        auth_dev_secret=SECRET, rate_limit_user_per_minute=0, rate_limit_org_per_minute=0
    )
    runtime = await build_runtime(settings)
    seeded = await seed(runtime.entities, sessions, teacher_sessions)
    if kind == "project":
        app = create_app(runtime)
    elif kind == "bare-store":
        app = bare.store_app(runtime.store, seeded)
    else:
        app = bare.list_app(seeded, cached=kind == "bare+caches")
    config = server_config(app, "127.0.0.1", port, log_level="warning")
    print("ready", flush=True)
    await Server(config).serve()


# -- load --------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _headers(page: str) -> dict[str, str]:
    from app.platform.auth import mint_dev_token
    from bench.seed import ORG, SECRET, USERS

    token = mint_dev_token(SECRET, org=ORG, user=USERS[page], roles=[page])
    return {
        "Authorization": f"Bearer {token}",
        "X-Bench-Role": page,
        "Content-Type": "application/json",
    }


def _wrk(url: str, body: str, headers: dict[str, str], seconds: float, connections: int) -> int:
    script = "wrk.method = 'POST'\nwrk.body = " + json.dumps(body) + "\n"
    script += "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", f.name, url],
            capture_output=True, text=True, check=True, preexec_fn=lambda: _pin("load"),
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    line = next(ln for ln in out.splitlines() if "requests in" in ln)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return int(line.split()[0])


def _python_load(url: str, body: str, headers: dict[str, str], seconds: float, conns: int) -> int:
    """The fallback load tool: ``conns`` keep-alive clients in a child process."""
    code = (
        "import asyncio, sys, time, httpx\n"
        "url, body, seconds, conns = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3]), "
        "int(sys.argv[4])\n"
        f"headers = {headers!r}\n"
        "async def client(c, end, n):\n"
        "    while time.monotonic() < end:\n"
        "        r = await c.post(url, content=body, headers=headers)\n"
        "        assert r.status_code == 200, r.text\n"
        "        n[0] += 1\n"
        "async def main():\n"
        "    n = [0]\n"
        "    async with httpx.AsyncClient(timeout=30) as c:\n"
        "        end = time.monotonic() + seconds\n"
        "        await asyncio.gather(*(client(c, end, n) for _ in range(conns)))\n"
        "    print(n[0])\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, url, body, str(seconds), str(conns)],
        capture_output=True, text=True, check=True, preexec_fn=lambda: _pin("load"),
    ).stdout  # fmt: skip
    return int(out.strip())


def _round(pid: int, url: str, page: str, seconds: float, connections: int) -> tuple[float, float]:
    """(requests per second, server CPU milliseconds per request) of one run."""
    body = json.dumps({"query": PAGES[page]})
    load = _wrk if shutil.which("wrk") else _python_load
    cpu, started = _cpu_seconds(pid), time.monotonic()
    requests = load(url, body, _headers(page), seconds, connections)
    elapsed, used = time.monotonic() - started, _cpu_seconds(pid) - cpu
    return requests / elapsed, used * 1000 / max(requests, 1)


def _check(url: str, page: str) -> None:
    import httpx

    reply = httpx.post(url, json={"query": PAGES[page]}, headers=_headers(page)).json()
    edges = reply.get("data", {}).get("sessions", {}).get("edges", [])
    if "errors" in reply or len(edges) != 50 or not edges[0]["node"]["student"]["name"]:
        raise RuntimeError(f"unexpected reply for the {page} page: {str(reply)[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--teacher-sessions", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    teacher_sessions = args.teacher_sessions or args.sessions
    if args.serve:
        asyncio.run(_serve(args.serve, args.port, args.sessions, teacher_sessions))
        return

    from app.platform.queue import _free_port

    servers = {}
    for kind in KINDS:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(port),
             "--sessions", str(args.sessions), "--teacher-sessions", str(teacher_sessions)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        servers[kind] = (proc, f"http://127.0.0.1:{port}/graphql")
    try:
        time.sleep(0.5)
        for _kind, (_, url) in servers.items():
            for page in PAGES:
                _check(url, page)
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for n in range(args.rounds):
            order = [(kind, servers[kind]) for kind in RUN_ORDER]
            for page in PAGES:
                for kind, (proc, url) in order if n % 2 == 0 else reversed(order):
                    run = _round(proc.pid, url, page, args.seconds, args.connections)
                    results.setdefault((kind, page), []).append(run)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    _report(results, args, teacher_sessions)


def _report(results: dict, args: argparse.Namespace, teacher_sessions: int) -> None:
    tool = "wrk" if shutil.which("wrk") else "a Python client"
    print(f"bench/compare.py, {date.today()}, {os.cpu_count()} cores, {tool}, "
          f"{args.connections} connections, {args.rounds} rounds of {args.seconds:g} s, "
          f"{args.sessions} sessions in the org ({teacher_sessions} the teacher's)")  # fmt: skip
    median = {
        key: (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
        for key, runs in results.items()
    }
    print(f"\n{'page':<8} {'server':<12} {'req/s':>8} {'CPU ms/req':>11}")
    for page in PAGES:
        for kind in KINDS:
            rps, cpu = median[(kind, page)]
            print(f"{page:<8} {kind:<12} {rps:>8.0f} {cpu:>11.2f}")
    print(
        "\nproject CPU per request as a multiple of each baseline: the median of the rounds' "
        "ratios (their range; target in brackets)"
    )
    for page in PAGES:
        cells = []
        for kind in KINDS[1:]:
            paired = [
                p / b
                for (_, p), (_, b) in zip(
                    results[("project", page)], results[(kind, page)], strict=True
                )
            ]
            ratio = statistics.median(paired)
            target = TARGETS.get((page, kind))
            mark = f" [<= {target}{' ok' if ratio <= target else ' MISSED'}]" if target else ""
            cells.append(f"{kind} {ratio:.2f}x ({min(paired):.2f}-{max(paired):.2f}){mark}")
        print(f"  {page:<8} " + "; ".join(cells))


if __name__ == "__main__":
    main()
