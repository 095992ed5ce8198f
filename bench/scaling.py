"""How a teacher's page costs as the organization grows: the page of 50 sessions (with their
students) at 1,000 and at 10,000 sessions in the organization, the teacher holding 100 of
them either way. The target: at most 3x at 10,000 what it costs at 1,000.

    .venv/bin/python bench/scaling.py [--sizes 1000 10000] [--requests 100] [--rounds 7]

Each size gets its own runtime on the in-memory store. Requests go to the ASGI application
directly (no sockets, no client), so the figure is the server's own CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from app.config import Settings
from app.graphql.app import create_app
from app.platform.auth import mint_dev_token
from app.platform.heap import settle_heap
from app.runtime import build_runtime
from bench.compare import PAGES
from bench.seed import ORG, SECRET, USERS, seed

TEACHER_SESSIONS = 100


async def call(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """One POST /graphql straight into the ASGI app; the response body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


async def main(sizes: list[int], requests: int, rounds: int) -> None:
    apps = {}
    for size in sizes:
        runtime = await build_runtime(Settings(auth_dev_secret=SECRET))
        started = time.perf_counter()
        await seed(runtime.entities, size, TEACHER_SESSIONS)
        print(f"seeded {size:,} sessions in {time.perf_counter() - started:.1f} s")
        apps[size] = create_app(runtime)
    token = mint_dev_token(SECRET, org=ORG, user=USERS["teacher"], roles=["teacher"])
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    body = json.dumps({"query": PAGES["teacher"]}).encode()
    for app in apps.values():
        for _ in range(20):
            reply = json.loads(await call(app, body, headers))
        edges = reply["data"]["sessions"]["edges"]
        assert len(edges) == 50 and reply["data"]["sessions"]["totalCount"] == TEACHER_SESSIONS
    settle_heap()  # as the server does once started (app.graphql.server.Server)
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):  # interleaved, so drift in the machine hits every size alike
        for size, app in apps.items():
            cpu = time.process_time()
            for _ in range(requests):
                await call(app, body, headers)
            samples[size].append((time.process_time() - cpu) * 1000 / requests)
    base = statistics.median(samples[sizes[0]])
    print(f"\nteacher page (50 sessions, their students), CPU per request, median of {rounds}")
    for size in sizes:
        cost = statistics.median(samples[size])
        print(f"  {size:>7,} org sessions: {cost:6.2f} ms  ({cost / base:.2f}x)")
    ratio = statistics.median(samples[sizes[-1]]) / base
    verdict = "ok" if ratio <= 3 else "MISSED"
    print(f"{sizes[-1]:,} vs {sizes[0]:,}: {ratio:.2f}x (target: at most 3x) {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.requests, args.rounds))
