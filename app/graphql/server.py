"""How the API is served: uvicorn with bounds on connections that never finish a request.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but not one that never sends a complete request head: a fresh
connection that sends nothing, or a request line and then a header a minute, holds its socket
forever. ``BoundedH11Protocol`` gives every connection ``head_timeout`` seconds to deliver the
head of its next request, from the moment it connects or its previous response ends. Bodies
are bounded by the gate (a read budget and a size cap); concurrency by ``limit_concurrency``
(HTTP 503 beyond it), so held sockets cannot starve the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.platform.heap import settle_heap

HEAD_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 1000


class BoundedH11Protocol(H11Protocol):
    head_timeout: float = HEAD_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a complete request head arrived
            self._disarm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm()  # the socket now belongs to the websocket protocol
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._head_timer is None:
            if self.cycle is None or self.cycle.response_complete:
                self._arm()


class Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT or SIGTERM like uvicorn's own -- but without
    re-raising the signal once stopped, which would kill the process before the command's
    clean-up ran (the embedded Redis would outlive it). The command then exits with 0.

    Once started, everything built so far is moved out of the garbage collector's reach and
    the young generation's threshold follows what its collections find
    (``app.platform.heap``)."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        settle_heap()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn settings the service runs with (also used by the tests' servers)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=BoundedH11Protocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
        log_config=None,  # our handler and format (app.platform.logs), request ids included
        **{"log_level": "info", **options},
    )
