"""One subscriber's live connection: its subscriptions and the changes waiting for them.

Everything a connection holds is bounded: at most ``max_subscriptions`` feeds, and at most
``max_pending`` changes waiting across all of them. A subscriber that does not keep up --
its client reads slower than changes arrive -- would otherwise make the process buffer
without end; instead, the change that would exceed the bound drops the connection
(``on_overflow``: the transport closes it with its code), and the client reconnects and
catches up. ``UserConnections`` bounds how many connections one user holds in a process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from app.platform.changes import Change
from app.platform.errors import AppError, BadUserInput, ErrorCode
from app.platform.live.hub import Delivery
from app.platform.org_state import OrgStates


class LimitReached(AppError):
    """Too many subscriptions on a connection, or connections for a user."""

    code = ErrorCode.RATE_LIMITED


class Feed:
    """The changes of some types for one subscription, in order of arrival."""

    def __init__(self, connection: LiveConnection, types: frozenset[str]) -> None:
        self.types = types
        self._connection = connection
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()

    def put(self, delivery: Delivery) -> None:
        self._queue.put_nowait(delivery)

    async def get(self) -> Delivery:
        delivery = await self._queue.get()
        self._connection.pending -= 1
        return delivery

    def discard(self) -> None:
        self._connection.pending -= self._queue.qsize()
        self._queue = asyncio.Queue()


class LiveConnection:
    def __init__(
        self,
        organization: str,
        *,
        max_subscriptions: int,
        max_pending: int,
        on_overflow: Callable[[], None],
        on_interrupted: Callable[[], None],
    ) -> None:
        self.organization = organization
        self.max_subscriptions = max_subscriptions
        self.max_pending = max_pending
        self.pending = 0
        self.dropped = False
        self._feeds: dict[str, Feed] = {}
        self._on_overflow = on_overflow
        self._on_interrupted = on_interrupted

    def open(self, key: str, types: frozenset[str]) -> Feed:
        """A new feed (one per subscription); ``LimitReached`` beyond the bound."""
        if len(self._feeds) >= self.max_subscriptions:
            raise LimitReached(
                f"At most {self.max_subscriptions} subscriptions may run on one connection; "
                "complete one before starting another.",
                details={"limit": self.max_subscriptions},
            )
        feed = self._feeds[key] = Feed(self, types)
        return feed

    def close(self, key: str) -> None:
        feed = self._feeds.pop(key, None)
        if feed is not None:
            feed.discard()

    # -- Listener (called by the hub, never blocks) ---------------------------------------

    def offer(self, delivery: Delivery) -> None:
        if self.dropped:
            return
        targets = [f for f in self._feeds.values() if delivery.change.type in f.types]
        if not targets:
            return
        if self.pending + len(targets) > self.max_pending:
            self.dropped = True
            for feed in self._feeds.values():
                feed.discard()
            self._on_overflow()
            return
        for feed in targets:
            feed.put(delivery)
            self.pending += 1

    def interrupted(self) -> None:
        if not self.dropped:
            self.dropped = True
            self._on_interrupted()


class ReplayUnavailable(BadUserInput):
    def __init__(self, after: int) -> None:
        super().__init__(
            f"The changes after sequence {after} are no longer all kept: query what you show "
            "again, then subscribe without 'after'.",
            {"after": "too old to replay; refetch with a query"},
        )


async def follow(
    feed: Feed, states: OrgStates, missed: list[Change], after: int | None
) -> AsyncIterator[Delivery]:
    """``missed`` (the replayed changes numbered after ``after``), then the feed's live
    changes, each once and in order: the feed was opened before the replay was read, so
    nothing published meanwhile is lost, and what both hold is given once."""
    last = after or 0
    for change in missed:
        last = change.sequence
        if change.type in feed.types:
            yield Delivery(change, states)
    while True:
        delivery = await feed.get()
        if delivery.change.sequence > last:
            yield delivery


class UserConnections:
    """Live connections per user in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[tuple[str, str], int] = {}

    def acquire(self, organization: str, user: str) -> Callable[[], None]:
        key = (organization, user)
        if self._open.get(key, 0) >= self.limit:
            raise LimitReached(
                f"At most {self.limit} live connections per user; close one first.",
                details={"limit": self.limit},
            )
        self._open[key] = self._open.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]

        return release


__all__ = [
    "Feed",
    "LimitReached",
    "LiveConnection",
    "ReplayUnavailable",
    "UserConnections",
    "follow",
]
