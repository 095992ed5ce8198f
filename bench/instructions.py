"""Instructions per request, counted by valgrind's callgrind: the project against bare
Strawberry over the same store, for the teacher's and the admin's page of ``compare.py``.

    .venv/bin/python bench/instructions.py [--requests 200] [--sessions 60]

``compare.py`` measures CPU time over real HTTP, as users meet it, but on a shared machine
that moves by several percent from one run to the next, more than most changes a developer
wants to judge. Instructions do not: the same code, data and hash seed execute the same
instructions, whatever else the machine runs. So each server runs in-process (requests sent
into the ASGI application, four at a time, no sockets) under ``valgrind --tool=callgrind``,
with counting switched on only while the measured requests run (after seeding and a warm-up
as long as the measurement, and after ``settle_heap`` as the server calls it). Instructions
are not time -- a cache miss costs more than an add -- so this is the repeatable companion of
``compare.py``, not its replacement; it leaves out HTTP parsing, which both sides share.

Needs valgrind (Debian's package ``valgrind``: ``valgrind`` and ``callgrind_control``). Each
of the four runs takes about a minute; two run at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from bench.compare import PAGES

KINDS = ("project", "bare-store")
CONCURRENCY = 4
POLL_SECONDS = 0.05


# -- the measured process ----------------------------------------------------------------------


def _wait_for(flag: Path) -> None:
    """Short sleeps, not one long one: valgrind takes ``callgrind_control``'s commands only
    while the program runs."""
    while not flag.exists():
        time.sleep(POLL_SECONDS)


async def _child(kind: str, page: str, requests: int, sessions: int, flags: Path) -> None:
    from app.config import Settings
    from app.graphql.app import create_app
    from app.platform.auth import mint_dev_token
    from app.platform.heap import settle_heap
    from app.runtime import build_runtime
    from bench import bare
    from bench.scaling import call
    from bench.seed import ORG, SECRET, USERS, seed

    settings = Settings(
        auth_dev_secret=SECRET, rate_limit_user_per_minute=0, rate_limit_org_per_minute=0
    )
    runtime = await build_runtime(settings)
    seeded = await seed(runtime.entities, sessions, sessions)
    app = create_app(runtime) if kind == "project" else bare.store_app(runtime.store, seeded)
    token = mint_dev_token(SECRET, org=ORG, user=USERS[page], roles=[page])
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"x-bench-role", page.encode()),
    ]
    body = json.dumps({"query": PAGES[page]}).encode()
    reply = json.loads(await call(app, body, headers))
    if "errors" in reply or len(reply["data"]["sessions"]["edges"]) != 50:
        raise RuntimeError(f"unexpected reply for the {page} page: {str(reply)[:300]}")

    async def client() -> None:
        for _ in range(requests // CONCURRENCY):
            await call(app, body, headers)

    settle_heap()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))  # warm, steady state
    (flags / "ready").touch()
    _wait_for(flags / "counting")
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    (flags / "done").touch()
    _wait_for(flags / "stopped")


# -- the parent --------------------------------------------------------------------------------


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _count(kind: str, page: str, requests: int, sessions: int) -> float:
    """Instructions per request of one server and page."""
    with tempfile.TemporaryDirectory() as tmp:
        flags = Path(tmp)
        out = flags / "callgrind.out"
        child = [
            *(sys.executable, __file__, "--child", kind, "--page", page, "--flags", tmp),
            *("--requests", str(requests), "--sessions", str(sessions)),
        ]
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", *child],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for flag in ("ready", "done"):
                while not (flags / flag).exists():
                    if proc.poll() is not None:
                        raise RuntimeError(f"{kind} {page} stopped: {proc.stderr.read()[-2000:]}")
                    time.sleep(0.2)
                if flag == "ready":
                    _control(proc.pid, "--zero")
                    _control(proc.pid, "--instr=on")
                    (flags / "counting").touch()
                else:
                    _control(proc.pid, "--instr=off")
                    _control(proc.pid, "--dump")
                    (flags / "stopped").touch()
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        total = 0  # the dump taken when counting stopped, and the empty one at exit
        for dump in flags.glob("callgrind.out*"):
            for line in dump.read_text().splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
        if not total:
            raise RuntimeError(f"no instructions counted for {kind} {page}")
        return total / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--page", choices=tuple(PAGES), help=argparse.SUPPRESS)
    parser.add_argument("--flags", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.page, args.requests, args.sessions, Path(args.flags)))
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("bench/instructions.py needs valgrind (Debian's package valgrind)")
    runs = [(kind, page) for page in PAGES for kind in KINDS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda r: _count(*r, args.requests, args.sessions), runs)
        counts = dict(zip(runs, found, strict=True))
    print(
        f"bench/instructions.py, {date.today()}, callgrind, {args.requests} requests "
        f"({CONCURRENCY} at a time) after as many to warm up, {args.sessions} sessions"
    )
    print(f"\n{'page':<8} {'server':<12} {'instructions/request':>21}")
    for page in PAGES:
        for kind in KINDS:
            print(f"{page:<8} {kind:<12} {counts[(kind, page)] / 1e6:>19.2f} M")
    print("\nproject instructions per request as a multiple of bare Strawberry over the store")
    for page in PAGES:
        ratio = counts[("project", page)] / counts[("bare-store", page)]
        print(f"  {page:<8} {ratio:.3f}x")


if __name__ == "__main__":
    main()
