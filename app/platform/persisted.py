"""Documents remembered by their SHA-256, per organization, bounded in number and time.

Clients that send a document's hash instead of its text (automatic persisted queries) need
the server to remember texts it was sent once. Memory is the shared resource here: each
organization keeps at most ``max_documents`` of them (the least recently used go first), and
each expires ``ttl_seconds`` after it was last used. Size per document is the caller's check.

``RedisDocuments`` is shared by every API process (a client's second request may reach
another process); ``MemoryDocuments`` serves a process without Redis (tests, tools).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

CALL_SECONDS = 2.0

# KEYS: the document, the organization's index (digest -> last use). ARGV: text, ttl, now,
# cap, digest, key prefix.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  for _, digest in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('DEL', ARGV[6] .. digest)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
return over
"""


class Documents(Protocol):
    async def get(self, org: str, digest: str) -> str | None: ...
    async def put(self, org: str, digest: str, text: str) -> None: ...


class RedisDocuments:
    def __init__(self, redis: Redis, *, ttl_seconds: int, max_documents: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._max = max_documents
        self._put = redis.register_script(_PUT)

    @staticmethod
    def _prefix(org: str) -> str:
        return f"apq:{{{org}}}:doc:"

    async def get(self, org: str, digest: str) -> str | None:
        prefix = self._prefix(org)
        async with asyncio.timeout(CALL_SECONDS), self._redis.pipeline(transaction=False) as pipe:
            pipe.getex(prefix + digest, ex=self._ttl)
            pipe.zadd(f"apq:{{{org}}}:index", {digest: time.time()}, xx=True)
            text, _ = await pipe.execute()
        if text is None:
            return None
        return text.decode() if isinstance(text, bytes) else str(text)

    async def put(self, org: str, digest: str, text: str) -> None:
        prefix = self._prefix(org)
        async with asyncio.timeout(CALL_SECONDS):
            await self._put(
                keys=[prefix + digest, f"apq:{{{org}}}:index"],
                args=[text, self._ttl, time.time(), self._max, digest, prefix],
            )


class MemoryDocuments:
    def __init__(self, *, ttl_seconds: int, max_documents: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_documents
        self._docs: dict[str, OrderedDict[str, tuple[str, float]]] = {}

    async def get(self, org: str, digest: str) -> str | None:
        docs = self._docs.get(org)
        found = docs.get(digest) if docs else None
        if found is None or found[1] < time.monotonic():
            return None
        assert docs is not None
        docs[digest] = (found[0], time.monotonic() + self._ttl)
        docs.move_to_end(digest)
        return found[0]

    async def put(self, org: str, digest: str, text: str) -> None:
        docs = self._docs.setdefault(org, OrderedDict())
        docs[digest] = (text, time.monotonic() + self._ttl)
        docs.move_to_end(digest)
        while len(docs) > self._max:
            docs.popitem(last=False)
