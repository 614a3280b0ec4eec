"""The heap policy: long-lived state frozen out of the collector, nothing leaked at stop."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streaming.heap import HeapPolicy


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_freezes_what_is_alive_and_raises_the_young_threshold(restored_gc: None) -> None:
    state = {f"card:{i}": {"t": [i], "a": [1.0]} for i in range(1000)}
    policy = HeapPolicy(every_s=3600, young_threshold=12_345)
    policy.start()
    assert gc.get_freeze_count() >= 3000  # the state's dicts and lists are frozen now
    assert gc.get_threshold()[0] == 12_345
    frozen = gc.get_freeze_count()
    policy.tick()  # not due yet: nothing moves
    assert gc.get_freeze_count() == frozen
    assert len(state) == 1000


def test_tick_freezes_state_created_since_the_last_freeze(restored_gc: None) -> None:
    policy = HeapPolicy(every_s=0.0)
    policy.start()
    before = gc.get_freeze_count()
    grown = [{"t": [i]} for i in range(5000)]
    policy.tick()
    assert gc.get_freeze_count() >= before + 5000
    assert len(grown) == 5000


def test_release_restores_the_collector_and_reclaims_frozen_cycles(restored_gc: None) -> None:
    defaults = gc.get_threshold()
    policy = HeapPolicy(every_s=0.0, young_threshold=50_000)

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector can free it
    policy.start()
    del a, b  # garbage now, but frozen: no collection sees it while the policy runs
    assert gc.collect() == 0
    found = policy.release()
    assert found >= 2  # both nodes (and their __dict__s) reclaimed at release
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == defaults
    assert policy.release() == 0  # a second release is a no-op
