"""Each API process listens to the change channel once and hands changes to its listeners.

A listener is one subscriber's connection. ``offer`` never blocks and never awaits: the hub's
one reading task cannot be held up by a slow connection (the connection bounds what it holds
and drops itself when full). A change reaches only the listeners of its organization.

All listeners that care about a change read the document again through their own
permissions; they share one read of the organization's state per change (``Delivery.state``:
one version check, types, roles and links from the cache), so a role, mask or link change
applies from the next change on, and a hundred subscribers cost one version read, not a
hundred.

When the connection to Redis is lost, the listeners are told (``interrupted``): changes may
have been missed, so subscribers reconnect and catch up (replay, or a query). The hub then
subscribes again, backing off up to ``MAX_BACKOFF`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from app.platform.changes import Change
from app.platform.live.bus import RedisChangeBus
from app.platform.org_state import OrgState, OrgStates

log = logging.getLogger(__name__)

START_SECONDS = 5.0
MAX_BACKOFF = 5.0


class Delivery:
    """A change on its way to the listeners of its organization."""

    __slots__ = ("_state", "_states", "change")

    def __init__(self, change: Change, states: OrgStates) -> None:
        self.change = change
        self._states = states
        self._state: asyncio.Future[OrgState] | None = None

    async def state(self) -> OrgState:
        """The organization's state as of this change, read once for all its listeners."""
        if self._state is None:
            self._state = asyncio.ensure_future(self._states.get(self.change.organization))
            self._state.add_done_callback(_retrieve)
        # Shielded: one listener going away must not cancel the read the others wait for.
        return await asyncio.shield(self._state)


def _retrieve(future: asyncio.Future[OrgState]) -> None:
    if not future.cancelled():
        future.exception()  # read by the listeners that awaited it; silence the rest


class Listener(Protocol):
    def offer(self, delivery: Delivery) -> None: ...
    def interrupted(self) -> None: ...


class Hub:
    def __init__(self, bus: RedisChangeBus, states: OrgStates) -> None:
        self.bus = bus
        self.states = states
        self._listeners: dict[str, set[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        """Starts listening (once) and waits until the channel is subscribed, at most
        ``START_SECONDS``: a subscriber accepted before that could miss changes."""
        if self._task is None or self._task.done():
            self._subscribed = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="live-hub")
        async with asyncio.timeout(START_SECONDS):
            await self._subscribed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def attach(self, organization: str, listener: Listener) -> Callable[[], None]:
        """Adds a listener for an organization; returns how to remove it."""
        self._listeners.setdefault(organization, set()).add(listener)

        def detach() -> None:
            listeners = self._listeners.get(organization)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[organization]

        return detach

    def listeners(self) -> int:
        return sum(map(len, self._listeners.values()))

    def deliver(self, change: Change) -> None:
        """Hands one change to the listeners of its organization (never blocks)."""
        listeners = self._listeners.get(change.organization)
        if not listeners:
            return
        delivery = Delivery(change, self.states)
        for listener in tuple(listeners):
            listener.offer(delivery)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self.bus.listen() as changes:
                    self._subscribed.set()
                    backoff = 0.5
                    async for change in changes:
                        self.deliver(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "live changes: lost the Redis subscription (%s); retrying in %.1f s",
                    type(exc).__name__,
                    backoff,
                )
            self._subscribed.clear()
            for listeners in list(self._listeners.values()):
                for listener in tuple(listeners):
                    listener.interrupted()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
