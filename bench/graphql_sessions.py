"""Latency and store round trips of a sessions page with nested student and teacher, over
real HTTP on loopback, for each role and several page sizes.

    .venv/bin/python bench/graphql_sessions.py [--sessions 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from app.config import Settings
from app.graphql.app import create_app
from app.graphql.server import Server, server_config
from app.platform.actor import Actor
from app.platform.auth import mint_dev_token
from app.runtime import build_runtime
from bench.seed import (
    ORG,
    SECRET,
    seed,
)

QUERY = """query($n: Int!) { sessions(first: $n) { totalCount edges { node {
  id startTime status student { name } teacher { name } } } } }"""
USERS = {"admin": "u-admin", "teacher": "u-t1", "guardian": "u-g1"}


async def main(sessions: int, repeat: int) -> None:
    runtime = await build_runtime(Settings(auth_dev_secret=SECRET))
    seeded = await seed(runtime.entities, sessions=0, teacher_sessions=0)
    system = await runtime.entities.for_actor(Actor.system(ORG, "bench"))
    start = datetime.now(UTC) + timedelta(days=2)
    for i in range(sessions):  # every session Teacher T1's and Guardian G1's child S1's
        await system.create(
            "session",
            {"subject": "math"},
            server_fields={
                "teacherId": seeded.ids["T1"],
                "studentId": seeded.ids["S1"],
                "guardianId": seeded.ids["G1"],
                "startTime": start + timedelta(hours=i),
                "duration": 60,
                "status": "scheduled",
            },
        )
    server = Server(server_config(create_app(runtime), "127.0.0.1", 0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/graphql"
    print(f"{sessions} sessions; median of {repeat} requests per row")
    print(f"{'role':<9} {'page':>5} {'median ms':>10} {'p95 ms':>8} {'round trips':>12}")
    async with httpx.AsyncClient() as client:
        for role, user in USERS.items():
            token = mint_dev_token(SECRET, org=ORG, user=user, roles=[role])
            headers = {"Authorization": f"Bearer {token}"}
            for n in (5, 50, 100):
                times, trips = [], 0
                for _ in range(repeat):
                    before = runtime.store.stats.round_trips
                    t0 = time.perf_counter()
                    r = await client.post(
                        url, json={"query": QUERY, "variables": {"n": n}}, headers=headers
                    )
                    times.append((time.perf_counter() - t0) * 1000)
                    trips = runtime.store.stats.round_trips - before
                    assert "errors" not in r.json(), r.text
                p95 = sorted(times)[int(0.95 * (len(times) - 1))]
                print(f"{role:<9} {n:>5} {statistics.median(times):>10.1f} {p95:>8.1f} {trips:>12}")
    server.should_exit = True
    await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.repeat))
