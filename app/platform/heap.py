"""How a long-running server process uses the garbage collector.

Reference counting frees almost everything a request allocates; the cyclic collector only
has to find the few cycles left over (asyncio futures, GraphQL execution records). Two
things make its default behaviour expensive for a server:

- Everything built at start (the schema, packs, libraries, caches) lives as long as the
  process, yet every full collection would walk it again. ``settle_heap`` moves it out of
  the collector's reach once (``gc.freeze``).
- CPython collects its young generation whenever the tracked objects allocated since the
  last collection, less those freed, exceed a threshold. Several requests in flight hold
  their own live objects at once; when that working set is larger than the threshold, each
  young collection finds next to nothing -- every object it walks belongs to a request that
  has not finished -- and the next one follows a few requests later: measured with four
  concurrent teacher pages, one young collection every four requests, each freeing nothing
  and walking ~11,000 objects, about a sixth of the request's CPU. ``YoungThreshold`` watches
  what each young collection frees and doubles the threshold while collections find almost
  nothing, halving it back once they free a good share of what they walk. Both ends are
  bounded: the floor keeps collections frequent when cycles are what fills the young
  generation (little concurrency), the ceiling bounds a collection's pause and the memory
  that unreachable cycles may hold before they are freed.
"""

from __future__ import annotations

import gc
from typing import Any

FLOOR = 10_000  # CPython's default is 700: far below what one request allocates
CEILING = 80_000  # a young collection of this many live objects takes ~20 ms here
OLDER = (20, 20)  # young collections per middle-aged one, middle-aged per full one
FUTILE = 0.01  # a collection freeing under 1% of its threshold found nearly nothing...
FRUITFUL = 0.25  # ...and one freeing over a quarter finds what it is there for


class YoungThreshold:
    """A ``gc.callbacks`` entry that adapts the young generation's threshold to what its
    collections find (see the module's docstring)."""

    def __init__(self, floor: int = FLOOR, ceiling: int = CEILING) -> None:
        self.floor = floor
        self.ceiling = ceiling

    def next_threshold(self, threshold: int, collected: int) -> int:
        if collected < threshold * FUTILE:
            return min(self.ceiling, threshold * 2)
        if collected > threshold * FRUITFUL:
            return max(self.floor, threshold // 2)
        return threshold

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != 0:
            return
        threshold, *older = gc.get_threshold()
        new = self.next_threshold(threshold, info["collected"])
        if new != threshold:
            gc.set_threshold(new, *older)


def settle_heap() -> None:
    """Freezes what the process has built so far and installs ``YoungThreshold`` (once).
    The server calls it at start; benchmarks that run the service in-process call it once
    their data is loaded, so that they measure what the server would do."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(FLOOR, *OLDER)
    if not any(isinstance(c, YoungThreshold) for c in gc.callbacks):
        gc.callbacks.append(YoungThreshold())
