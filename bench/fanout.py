"""Live updates: fan-out latency from a write to 100 subscribers, over real websockets.

    .venv/bin/python bench/fanout.py [--subscribers 100] [--events 50] [--gap-ms 50]

An embedded ``redis-server`` and the service (its own process, the project's uvicorn
settings, the in-memory store seeded with ``bench.seed``) run on loopback. This process opens
``--subscribers`` websocket connections (graphql-transport-ws), a third each as the admin,
the session's teacher and its guardian (so three different views of every event), each
subscribed to ``sessionChanged`` for the organization. It then changes one session
``--events`` times through ``updateSession`` over HTTP, one at a time, ``--gap-ms`` apart.

Fan-out latency is the time from sending the mutation to a subscriber receiving its event,
so it includes the write itself: what a user watching a screen waits. Reported: p50, p95 and
max over every (subscriber, event) pair, and whether every subscriber received every event
exactly once (by sequence number). The target: p95 under 100 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import httpx
from websockets.asyncio.client import ClientConnection, connect

TARGET_P95_MS = 100.0
SUBSCRIPTION = (
    "subscription { sessionChanged { sequence kind id session { id status teacherNotes } } }"
)
NOTE = (
    "mutation($id: ID!, $n: String!) { updateSession(id: $id, input: {teacherNotes: $n}) { id } }"
)


# -- the server (a child process) ---------------------------------------------------------------


async def _serve(port: int, redis_url: str) -> None:
    from app.config import Settings
    from app.graphql.app import create_app
    from app.graphql.server import Server, server_config
    from app.runtime import build_runtime
    from bench.seed import SECRET, seed

    settings = Settings(
        auth_dev_secret=SECRET,
        redis_url=redis_url,
        rate_limit_user_per_minute=0,  # one benchmark user would exceed them
        rate_limit_org_per_minute=0,
        live_max_connections_per_user=1000,  # a third of the subscribers share one user
    )
    runtime = await build_runtime(settings, with_queue=True)
    seeded = await seed(runtime.entities, sessions=20, teacher_sessions=10)
    session = seeded.sessions[0]  # Teacher T1's, Student S1's, so Guardian G1's
    config = server_config(create_app(runtime), "127.0.0.1", port, log_level="warning")
    print("ready", session["id"], flush=True)
    try:
        await Server(config).serve()
    finally:
        await runtime.close()


# -- subscribers --------------------------------------------------------------------------------


class Subscriber:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[tuple[float, int]] = []  # (arrival, sequence)
        self.errors: list[dict] = []
        self.expected = 0
        self.complete = asyncio.Event()  # set once ``expected`` events arrived

    @classmethod
    async def open(cls, url: str, token: str) -> Subscriber:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30)
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        )
        await ws.send(json.dumps({"type": "ping"}))  # answered once the subscription listens
        assert json.loads(await ws.recv()) == {"type": "pong"}
        return cls(ws)

    async def read(self) -> None:
        async for raw in self.ws:
            arrival = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "next" and "errors" not in message["payload"]:
                event = message["payload"]["data"]["sessionChanged"]
                self.received.append((arrival, event["sequence"]))
                if len(self.received) >= self.expected:
                    self.complete.set()
            elif message.get("type") != "pong":
                self.errors.append(message)


def _token(role: str, user: str) -> str:
    from app.platform.auth import mint_dev_token
    from bench.seed import ORG, SECRET

    return mint_dev_token(SECRET, org=ORG, user=user, roles=[role])


async def _run(args: argparse.Namespace, base: str, session_id: str) -> dict:
    ws_url = base.replace("http://", "ws://") + "/graphql"
    users = [("admin", "u-admin"), ("teacher", "u-t1"), ("guardian", "u-g1")]
    tokens = [_token(*users[n % 3]) for n in range(args.subscribers)]
    subscribers = []
    for chunk in range(0, len(tokens), 20):  # connect in batches, as clients would arrive
        batch = tokens[chunk : chunk + 20]
        subscribers += await asyncio.gather(*(Subscriber.open(ws_url, t) for t in batch))
    for s in subscribers:
        s.expected = args.events
    readers = [asyncio.create_task(s.read()) for s in subscribers]
    sent: list[float] = []
    writer = {"Authorization": f"Bearer {_token('admin', 'u-admin-writer')}"}
    async with httpx.AsyncClient(base_url=base, headers=writer, timeout=30) as client:
        for n in range(args.events):
            sent.append(time.perf_counter())
            body = {"query": NOTE, "variables": {"id": session_id, "n": f"note {n}"}}
            response = await client.post("/graphql", json=body)
            assert "errors" not in response.json(), response.text
            await asyncio.sleep(args.gap_ms / 1000)
    everyone = asyncio.gather(*(s.complete.wait() for s in subscribers))
    try:
        await asyncio.wait_for(everyone, 10)
    except TimeoutError:
        pass  # reported: someone missed an event
    await asyncio.sleep(0.3)  # anything duplicated would arrive now
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(s.ws.close() for s in subscribers), return_exceptions=True)
    return {"sent": sent, "subscribers": subscribers}


def _report(args: argparse.Namespace, sent: list[float], subscribers: list[Subscriber]) -> bool:
    latencies = []
    exactly_once = True
    first = [seq for _, seq in subscribers[0].received]
    for s in subscribers:
        sequences = [seq for _, seq in s.received]
        if len(sequences) != args.events or len(set(sequences)) != args.events or s.errors:
            exactly_once = False
        if sequences != first:
            exactly_once = False
        # the k-th event each subscriber receives is the k-th write (the only writer)
        latencies += [arrival - sent[k] for k, (arrival, _) in enumerate(s.received[: len(sent)])]
    latencies.sort()

    def ms(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * (len(latencies) - 1)))] * 1000

    print(
        f"bench/fanout.py, {date.today()}, {os.cpu_count()} cores, {args.subscribers} "
        f"subscribers (admin, teacher, guardian), {args.events} events {args.gap_ms} ms apart"
    )
    print(
        f"fan-out latency (mutation sent -> event received), n={len(latencies)}: "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {ms(0.95):.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    print(f"each subscriber received each event exactly once: {'yes' if exactly_once else 'NO'}")
    ok = ms(0.95) < TARGET_P95_MS
    print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'ok' if ok else 'MISSED'}")
    return exactly_once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--gap-ms", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--redis", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.port, args.redis))
        return
    asyncio.run(_bench(args))


async def _bench(args: argparse.Namespace) -> None:
    from app.platform.queue import EmbeddedRedis, _free_port

    redis = await EmbeddedRedis().start()
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--port", str(port), "--redis", redis.url,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("ready"), f"the server did not start: {line!r}"
        session_id = line.split()[1]
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # uvicorn listens shortly after "ready"
            try:
                async with httpx.AsyncClient() as client:
                    await client.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        result = await _run(args, base, session_id)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        await redis.stop()
    if not _report(args, result["sent"], result["subscribers"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
