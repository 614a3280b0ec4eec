"""One contract, every backend: the state store tests run against memory and Redis.

Redis tests use the real server (``redis_url`` fixture: skip on a laptop without
it, fail under ``CI``), a unique key prefix per test, and delete their keys after.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from features.state import (
    MemoryStateStore,
    RedisStateStore,
    StateStore,
    StateStoreError,
    make_state_store,
)
from fraudlens.settings import StateSettings

STATE: dict[str, Any] = {
    "card_velocity": {
        "t": [1, 2],
        "a": [10.5, 0.1],
        "b": 7,
        "h": [7, 7],
        "s": [105000, 1000],
        "m": [7, 8],
    },
    "novelty": {"m": {"mer-1": 5, "ünïcode": 6}, "d": {}, "c": {"FR": 1}, "x": None},
    "geo": {"t": 1_767_225_600_000, "la": 48.8566, "lo": 2.3522},
}


class FakeClock:
    """Milliseconds that only move when the test says so."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    """Builds fresh, empty stores of the backend under test (Redis: own prefix each, cleaned up)."""
    made: list[StateStore] = []
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    def build() -> StateStore:
        store: StateStore
        if url is None:
            store = MemoryStateStore()
        else:
            store = RedisStateStore(url, key_prefix=f"fraudlens:test:{uuid.uuid4().hex}:").setup()
        made.append(store)
        return store

    yield build
    for store in made:
        if isinstance(store, RedisStateStore):
            store.clear()
        store.close()


@pytest.fixture
def store(make_store: Callable[[], StateStore]) -> StateStore:
    return make_store()


def test_round_trip_keeps_json_shapes_exactly(store: StateStore) -> None:
    store.save_many({"card:c1": STATE, "merchant:m1": {"k": [1, 2, 3], "f": []}}, ttl_ms=60_000)
    loaded = store.load_many(["card:c1", "merchant:m1"])
    assert loaded == {"card:c1": STATE, "merchant:m1": {"k": [1, 2, 3], "f": []}}
    assert isinstance(loaded["card:c1"]["card_velocity"]["s"][0], int)
    assert isinstance(loaded["card:c1"]["card_velocity"]["a"][1], float)


def test_missing_keys_are_absent_not_errors(store: StateStore) -> None:
    store.save_many({"card:c1": {"p": 1}}, ttl_ms=60_000)
    assert store.load_many(["card:nope", "card:c1", "merchant:nope"]) == {"card:c1": {"p": 1}}
    assert store.load_many([]) == {}
    store.save_many({}, ttl_ms=60_000)


def test_save_overwrites(store: StateStore) -> None:
    store.save_many({"card:c1": {"p": 1}}, ttl_ms=60_000)
    store.save_many({"card:c1": {"p": 2}}, ttl_ms=60_000)
    assert store.load_many(["card:c1"]) == {"card:c1": {"p": 2}}


def test_entities_expire_after_their_ttl(store: StateStore) -> None:
    store.save_many({"card:short": {"p": 1}}, ttl_ms=50)
    store.save_many({"card:long": {"p": 2}}, ttl_ms=60_000)
    time.sleep(0.2)
    store.evict()
    assert store.load_many(["card:short", "card:long"]) == {"card:long": {"p": 2}}


def test_snapshot_restores_states_and_remaining_ttl(make_store: Callable[[], StateStore]) -> None:
    source = make_store()
    source.save_many(
        {f"card:c{i}": {"p": i} for i in range(2500)}, ttl_ms=600_000
    )  # > one SCAN batch
    source.save_many({"merchant:m1": {"k": [5], "f": [5]}}, ttl_ms=None)
    data = source.snapshot()
    assert isinstance(data, bytes)
    target = make_store()
    target.restore(data)
    keys = [f"card:c{i}" for i in range(2500)] + ["merchant:m1"]
    assert target.load_many(keys) == source.load_many(keys)
    if isinstance(target, RedisStateStore):
        ttl = target.client.pttl(target.key_prefix + "card:c7")
        assert 590_000 < ttl <= 600_000
        assert target.client.pttl(target.key_prefix + "merchant:m1") == -1


def test_snapshot_is_portable_between_backends(store: StateStore) -> None:
    memory = MemoryStateStore()
    memory.save_many({"card:c1": STATE}, ttl_ms=60_000)
    store.restore(memory.snapshot())
    assert store.load_many(["card:c1"]) == {"card:c1": STATE}


def test_corrupt_snapshot_is_a_clear_error(store: StateStore) -> None:
    with pytest.raises(StateStoreError, match="FLS1"):
        store.restore(b"not a snapshot")
    with pytest.raises(StateStoreError, match="corrupt"):
        store.restore(b"FLS1garbage")


def test_memory_store_is_bounded_by_ttl_and_sweeps_itself() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock=clock, sweep_every_ms=1000)
    store.save_many({f"card:c{i}": {"p": i} for i in range(1000)}, ttl_ms=10_000)
    assert len(store) == 1000
    clock.now += 10_000
    assert store.load_many(["card:c1"]) == {}  # expired reads as missing at once
    store.save_many({"card:new": {"p": 0}}, ttl_ms=10_000)  # a save past the sweep interval sweeps
    assert len(store) == 1
    clock.now += 10_000
    assert store.evict() == 1 and len(store) == 0


def test_memory_store_refreshes_ttl_on_save() -> None:
    clock = FakeClock()
    store = MemoryStateStore(clock=clock)
    store.save_many({"card:c1": {"p": 1}}, ttl_ms=100)
    clock.now += 90
    store.save_many({"card:c1": {"p": 2}}, ttl_ms=100)
    clock.now += 90
    assert store.load_many(["card:c1"]) == {"card:c1": {"p": 2}}


@pytest.mark.integration
def test_redis_keys_carry_a_ttl_and_compact_json(redis_url: str) -> None:
    store = RedisStateStore(redis_url, key_prefix=f"fraudlens:test:{uuid.uuid4().hex}:")
    try:
        store.save_many({"card:c1": STATE}, ttl_ms=5_000)
        raw = store.client.get(store.key_prefix + "card:c1")
        assert raw.startswith(b"{") and b": " not in raw and b", " not in raw
        assert 0 < store.client.pttl(store.key_prefix + "card:c1") <= 5_000
        assert store.evict() == 0
    finally:
        store.clear()
        store.close()


def test_constructors_do_no_io() -> None:
    # Nothing listens on port 1: building must still succeed; only use connects.
    store = make_state_store(StateSettings(backend="redis", redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(store, RedisStateStore) and store._client is None
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        store.setup()
    assert isinstance(make_state_store(StateSettings()), MemoryStateStore)
    assert isinstance(store, StateStore) and isinstance(MemoryStateStore(), StateStore)
