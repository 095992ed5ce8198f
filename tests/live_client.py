"""A small graphql-transport-ws client on a real websocket (the ``websockets`` library), for
tests that watch what a subscriber receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class LiveClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0
        self._early: list[dict[str, Any]] = []  # received while waiting for a pong

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        payload: dict | None = None,
        ack: bool = True,
        **options: Any,
    ) -> AsyncIterator[LiveClient]:
        """``options`` go to ``websockets``' ``connect`` (``sock``, ``max_queue``, ...)."""
        async with connect(url, subprotocols=[PROTOCOL], open_timeout=10, **options) as ws:
            client = cls(ws)
            init = payload if payload is not None else {}
            if token is not None:
                init = {"Authorization": f"Bearer {token}", **init}
            await client.send({"type": "connection_init", "payload": init})
            if ack:
                message = await client.receive()
                assert message == {"type": "connection_ack"}, message
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, seconds: float = 5.0) -> dict[str, Any]:
        if self._early:
            return self._early.pop(0)
        try:
            async with asyncio.timeout(seconds):
                return json.loads(await self.ws.recv())
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None

    async def subscribe(
        self, query: str, variables: dict | None = None, *, id: str | None = None, **extra: Any
    ) -> str:
        if id is None:
            self._ids += 1
            id = str(self._ids)
        payload: dict[str, Any] = {"query": query, "variables": variables or {}, **extra}
        await self.send({"id": id, "type": "subscribe", "payload": payload})
        await self.sync()
        return id

    async def sync(self, seconds: float = 5.0) -> None:
        """A ping answered: the server has handled every message sent before it (a
        subscription then listens). What arrives meanwhile is kept for ``receive``."""
        await self.send({"type": "ping"})
        early = []
        while True:
            message = await self.receive(seconds)
            if message == {"type": "pong"}:
                break
            early.append(message)
        self._early = early + self._early

    async def next(self, seconds: float = 5.0) -> dict[str, Any]:
        """The data of the next ``next`` message (anything else fails the test)."""
        message = await self.receive(seconds)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]

    async def events(self, field: str, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
        return [(await self.next(seconds))[field] for _ in range(count)]

    async def error(self, seconds: float = 5.0) -> list[dict[str, Any]]:
        message = await self.receive(seconds)
        assert message["type"] == "error", message
        return message["payload"]

    async def nothing(self, seconds: float = 0.5) -> None:
        """Nothing arrives within ``seconds``."""
        assert not self._early, f"expected nothing, got {self._early[0]}"
        try:
            async with asyncio.timeout(seconds):
                message = await self.ws.recv()
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {message}")

    async def closed(self, seconds: float = 5.0) -> Closed:
        """Waits for the server to close the socket; what is received before is dropped."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self.receive(seconds)
        except Closed as closed:
            return closed
