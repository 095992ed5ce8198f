"""The server's garbage-collector policy (``app.platform.heap``): young collections that keep
walking live objects and free nothing raise the threshold, collections that find cycles bring
it back down, within bounds."""

from __future__ import annotations

import gc

import pytest

from app.platform.heap import CEILING, FLOOR, YoungThreshold, settle_heap


@pytest.fixture
def server_heap():
    """``settle_heap`` as the server calls it, undone afterwards for the rest of the suite."""
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    settle_heap()
    yield
    gc.callbacks[:] = callbacks
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_the_rule_doubles_on_futile_collections_and_halves_on_fruitful_ones():
    rule = YoungThreshold(floor=10_000, ceiling=80_000)
    assert rule.next_threshold(10_000, 0) == 20_000
    assert rule.next_threshold(40_000, 100) == 80_000
    assert rule.next_threshold(80_000, 0) == 80_000  # never above the ceiling
    assert rule.next_threshold(40_000, 20_000) == 20_000
    assert rule.next_threshold(10_000, 9_000) == 10_000  # never below the floor
    assert rule.next_threshold(20_000, 1_000) == 20_000  # in between: left alone


def test_settle_heap_installs_the_policy_once(server_heap):
    settle_heap()  # a second server start in the same process (the tests' servers)
    installed = [c for c in gc.callbacks if isinstance(c, YoungThreshold)]
    assert len(installed) == 1
    assert gc.get_threshold()[0] == FLOOR


def test_a_live_working_set_raises_the_threshold_and_cycles_lower_it(server_heap):
    # Many requests in flight: objects that stay alive across young collections.
    live = [[] for _ in range(4 * FLOOR)]
    raised = gc.get_threshold()[0]
    assert FLOOR < raised <= CEILING
    del live
    # Then cycles are what fills the young generation: collections free most of it.
    for _ in range(20 * CEILING):
        cycle: list = []
        cycle.append(cycle)
    del cycle
    assert gc.get_threshold()[0] < raised
