"""Changes across processes, on Redis: numbered per organization, broadcast, kept a while.

``publish`` runs one Lua script per organization and batch, so numbering, logging and
broadcasting are atomic and in order: each change gets the organization's next sequence
number (``INCR``), is appended to the organization's replay log (a stream capped at
``replay_events`` entries and dropped after ``replay_seconds`` without changes) and published
on one channel every API process subscribes to. A message is ``[sequence, organization, type,
id, action]``: never the document's data.

``listen`` yields what the channel carries, for the process's hub; ``replay`` reads what a
reconnecting subscriber missed, or says that it cannot (too old, or the counters were reset).
Every call is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from app.platform.changes import Change

CHANNEL = "changes"
REPLAY_EVENTS = 1000
REPLAY_SECONDS = 24 * 3600
CALL_SECONDS = 2.0

# KEYS: sequence counter, replay log. ARGV: channel, log length, log lifetime, then one
# JSON fragment '"org","type","id","action"' per change.
_PUBLISH = """
local last = 0
for i = 4, #ARGV do
  last = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], last .. '-1', 'c', ARGV[i])
  redis.call('PUBLISH', ARGV[1], '[' .. last .. ',' .. ARGV[i] .. ']')
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return last
"""


def _keys(org: str) -> list[str]:
    # One hash tag per organization: both keys live on the same node of a Redis cluster.
    return [f"changes:{{{org}}}:seq", f"changes:{{{org}}}:log"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode(message: Any) -> Change | None:
    """A channel message as a ``Change``; None for anything malformed (logged by no one:
    the channel is ours, so this is a different deployment sharing the Redis)."""
    try:
        sequence, org, type_, id_, action = json.loads(_text(message))
        return Change(org, type_, id_, action, int(sequence))
    except (ValueError, TypeError):
        return None


class RedisChangeBus:
    def __init__(
        self,
        redis: Redis,
        *,
        replay_events: int = REPLAY_EVENTS,
        replay_seconds: int = REPLAY_SECONDS,
        call_seconds: float = CALL_SECONDS,
    ) -> None:
        self.redis = redis
        self.replay_events = replay_events
        self._replay_seconds = replay_seconds
        self._seconds = call_seconds
        self._script = redis.register_script(_PUBLISH)

    async def publish(self, changes: Sequence[Change]) -> None:
        by_org: dict[str, list[str]] = {}
        for c in changes:
            fragment = json.dumps([c.organization, c.type, c.id, c.action])[1:-1]
            by_org.setdefault(c.organization, []).append(fragment)
        async with asyncio.timeout(self._seconds):
            for org, fragments in by_org.items():
                args = [CHANNEL, self.replay_events, self._replay_seconds, *fragments]
                await self._script(keys=_keys(org), args=args)

    async def current(self, org: str) -> int:
        """The organization's last sequence number (0 before its first change)."""
        async with asyncio.timeout(self._seconds):
            value = await self.redis.get(_keys(org)[0])
        return int(_text(value)) if value is not None else 0

    async def replay(self, org: str, after: int, limit: int | None = None) -> list[Change] | None:
        """The changes numbered after ``after``, oldest first; None when they cannot all be
        given: more than ``limit`` followed it, the log no longer holds them all, or the
        numbering restarted (a flushed Redis)."""
        limit = self.replay_events if limit is None else limit
        seq_key, log_key = _keys(org)
        async with asyncio.timeout(self._seconds):
            value = await self.redis.get(seq_key)
            last = int(_text(value)) if value is not None else 0
            if after > last or last - after > limit:
                return None
            if after == last:
                return []
            entries = await self.redis.xrange(
                log_key, f"{after + 1}-0", f"{last}-1", count=last - after
            )
        changes = []
        for entry_id, fields in entries:
            raw = fields.get(b"c", fields.get("c"))
            change = decode(f"[{_text(entry_id).split('-')[0]},{_text(raw)}]")
            if change is not None:
                changes.append(change)
        # Sequence numbers are consecutive: anything missing was trimmed (or never logged).
        if [c.sequence for c in changes] != list(range(after + 1, last + 1)):
            return None
        return changes

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[AsyncIterator[Change]]:
        """Subscribes to the channel; the context is entered once the subscription is
        confirmed, so nothing published afterwards is missed. Iterating raises when the
        connection is lost."""
        pubsub = self.redis.pubsub()
        try:
            async with asyncio.timeout(self._seconds):
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=self._seconds)
                    if message is not None and message.get("type") in ("subscribe", b"subscribe"):
                        break

            async def changes() -> AsyncIterator[Change]:
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is None or message.get("type") not in ("message", b"message"):
                        continue
                    change = decode(message["data"])
                    if change is not None:
                        yield change

            yield changes()
        finally:
            await pubsub.aclose()
