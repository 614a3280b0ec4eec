"""Feature-state checkpoints: atomic files, which one a restart may use, and the state they carry.

The service-level proof (kill -9 at three points, every score equal to an uninterrupted
run's) is tests/streaming/test_stream_state_recovery.py; these pin the parts it relies on.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from features.pipeline import FeaturePipeline
from features.schema import Transaction, iter_transactions
from features.simulator import simulate
from features.state import MemoryStateStore, RedisStateStore, RoutedStateStore, StateStore
from streaming.checkpoint import CheckpointDir, CheckpointError, _read_header


@pytest.fixture(scope="module")
def stream() -> list[Transaction]:
    frame = simulate(200, 20, 5).sort_values("timestamp", kind="stable")
    return list(iter_transactions(frame.iloc[:4000]))


def test_a_checkpoint_is_usable_only_once_the_committed_offsets_reach_it(tmp_path: Path) -> None:
    directory = CheckpointDir(tmp_path / "ckpt")
    first = directory.write({("tx", 0): 100, ("tx", 1): 50}, b"state-1")
    second = directory.write({("tx", 0): 200, ("tx", 1): 80}, b"state-2")

    assert directory.usable({("tx", 0): 99, ("tx", 1): 50}) is None
    assert directory.usable({("tx", 0): 150, ("tx", 1): 90}) == first
    assert directory.usable({("tx", 0): 200, ("tx", 1): 80}) == second
    # A partition the committed offsets do not name has committed nothing: not covered.
    assert directory.usable({("tx", 0): 500}) is None
    assert second.state() == b"state-2" and first.state() == b"state-1"
    assert [c.sequence for c in directory.list()] == [1, 2]
    assert not list(directory.path.glob(".*.tmp")), "no temporary file is left behind"


def test_prune_keeps_the_newest_covered_checkpoint_and_a_few_newer(tmp_path: Path) -> None:
    directory = CheckpointDir(tmp_path, keep=2)
    for offset in (10, 20, 30, 40, 50, 60):
        directory.write({("tx", 0): offset}, b"s")
    assert directory.prune({("tx", 0): 25}) == 3  # 10 (older than 20) and 30, 40 (beyond keep=2 newer)
    assert [c.offsets[("tx", 0)] for c in directory.list()] == [20, 50, 60]
    # Nothing known to be covered: all are "newer", and only the newest ``keep`` stay.
    assert directory.prune({}) == 1
    assert [c.offsets[("tx", 0)] for c in directory.list()] == [50, 60]


def test_an_unreadable_checkpoint_is_skipped_and_named_when_read(tmp_path: Path) -> None:
    directory = CheckpointDir(tmp_path)
    good = directory.write({("tx", 0): 5}, b"s")
    bad = tmp_path / "ckpt-000000000009.flc"
    bad.write_bytes(b"garbage")
    assert directory.usable({("tx", 0): 100}) == good
    with pytest.raises(CheckpointError, match="ckpt-000000000009.flc"):
        _read_header(bad)
    with pytest.raises(ValueError, match="keep must be at least 1"):
        CheckpointDir(tmp_path, keep=0)


def test_features_do_not_depend_on_batch_boundaries(stream: list[Transaction]) -> None:
    # The gap replay after a restart cuts the stream into other batches than the crashed run did.
    pipeline = FeaturePipeline.from_settings()
    online = pipeline.online(MemoryStateStore())
    one_by_one = np.vstack([online.transform_one(tx) for tx in stream])
    for size in (1, 7, 500, len(stream)):
        chunked = pipeline.online(MemoryStateStore())
        rows = np.vstack([chunked.transform_batch(stream[i : i + size]) for i in range(0, len(stream), size)])
        np.testing.assert_array_equal(rows, one_by_one, err_msg=f"batches of {size}")


def _continue_after_restore(source: StateStore, target: StateStore, stream: list[Transaction]) -> None:
    pipeline = FeaturePipeline.from_settings()
    half = len(stream) // 2
    uninterrupted = pipeline.online(MemoryStateStore())
    expected = uninterrupted.transform_batch(stream)
    first = pipeline.online(source)
    head = first.transform_batch(stream[:half])
    snapshot = source.snapshot()
    first.transform_batch(stream[half : half + 300])  # work after the checkpoint, lost with the crash
    target.clear()
    target.restore(snapshot)
    tail = pipeline.online(target).transform_batch(stream[half:])
    np.testing.assert_allclose(np.vstack([head, tail]), expected, rtol=0, atol=1e-12)


def test_a_restored_memory_snapshot_continues_exactly_as_an_uninterrupted_run(stream: list[Transaction]) -> None:
    store = MemoryStateStore()
    _continue_after_restore(store, store, stream)


def test_a_restored_redis_snapshot_continues_exactly_and_drops_later_keys(
    stream: list[Transaction], redis_url: str
) -> None:
    prefix = f"fl-test-ckpt:{uuid.uuid4().hex[:8]}:"
    store = RedisStateStore(redis_url, prefix).setup()
    try:
        _continue_after_restore(store, store, stream)
    finally:
        store.clear()
        store.close()


def test_snapshots_leave_out_the_prefixes_rebuilt_elsewhere(redis_url: str) -> None:
    memory = MemoryStateStore()
    memory.save_many({"card:c1": {"n": 1}, "merchant:m1": {"k": [1]}}, ttl_ms=None)
    copy = MemoryStateStore()
    copy.restore(memory.snapshot(("merchant:",)))
    assert copy.load_many(["card:c1", "merchant:m1"]) == {"card:c1": {"n": 1}}

    redis = RedisStateStore(redis_url, f"fl-test-ckpt:{uuid.uuid4().hex[:8]}:")
    try:
        redis.save_many({"card:c1": {"n": 1}, "merchant:m1": {"k": [1]}}, ttl_ms=60_000)
        copy = MemoryStateStore()
        copy.restore(redis.snapshot(("merchant:",)))
        assert copy.load_many(["card:c1", "merchant:m1"]) == {"card:c1": {"n": 1}}
    finally:
        redis.clear()
        redis.close()

    routed = RoutedStateStore(MemoryStateStore(), {"merchant:": MemoryStateStore()})
    routed.save_many({"card:c1": {"n": 1}, "merchant:m1": {"k": [1]}}, ttl_ms=None)
    routed.clear()
    assert routed.load_many(["card:c1", "merchant:m1"]) == {}


def test_a_copy_on_write_snapshot_holds_the_state_at_its_start_while_the_store_changes() -> None:
    import threading

    from features.state import decode_snapshot, seal_snapshot

    now = [1_000_000]
    store = MemoryStateStore(clock=lambda: now[0])
    store.save_many({f"card:{i}": {"n": i, "seen": [i]} for i in range(5000)}, ttl_ms=60_000)
    store.save_many({"merchant:m1": {"k": [1]}}, ttl_ms=None)
    expected = {key: (ttl, state) for key, ttl, state in decode_snapshot(store.snapshot(("merchant:",)))}

    def change(start: int) -> None:
        for i in range(start, 5000, 14):
            states = store.load_many([f"card:{i}"])
            states[f"card:{i}"]["n"] += 1000
            states[f"card:{i}"]["seen"].append(-1)
            store.save_many(states, ttl_ms=60_000)

    capture = store.begin_snapshot(("merchant:",))
    change(0)  # before any copying: the store copies each state before handing it out
    copied: list[bytes] = []
    worker = threading.Thread(target=lambda: copied.append(capture.run()))
    worker.start()
    # The store serves on while the copy runs: in-place changes, a new key, an expiry.
    change(7)
    store.save_many({"card:new": {"n": 0, "seen": []}}, ttl_ms=60_000)
    now[0] += 30_000
    store.save_many({"card:1": store.load_many(["card:1"])["card:1"]}, ttl_ms=1)
    now[0] += 10
    assert store.evict() == 1
    worker.join()

    got = {key: (ttl, state) for key, ttl, state in decode_snapshot(seal_snapshot(copied[0]))}
    assert got == expected
    assert store.load_many(["card:7"])["card:7"] == {"n": 1007, "seen": [7, -1]}  # the live state moved on


def test_a_replay_updates_the_state_only_for_the_record_the_store_scored(tmp_path: Path) -> None:
    # The store keeps the source of each score: the record scored before a crash is replayed
    # through the features; a later duplicate of it (same id, another offset) never was, so
    # it is not either; the gap replay also takes records the store lacks (scored, then
    # dead-lettered downstream, or refused: the features decide again).
    from streaming.pipeline import decode_batch
    from streaming.records import BatchOutputs, ScoreOut, SourceRecord
    from streaming.settings import KafkaSettings, StoreSettings
    from streaming.state_sync import StateSync, stored_sources
    from streaming.store import SqlAlertStore

    store = SqlAlertStore(StoreSettings(url=f"sqlite:///{tmp_path / 'store.db'}"))
    store.setup()
    store.write(BatchOutputs(scores=[ScoreOut("tx-1", b"c1", 0.1, "pass", 0.9, "v1", 1_767_225_600_000, 2, 5,
                                              1_767_225_600_000, 1.0)]))

    def record(offset: int, tx_id: str) -> SourceRecord:
        value = (f'{{"transaction_id": "{tx_id}", "timestamp": "2026-01-01T00:00:00Z", "card_id": "c1", '
                 f'"merchant_id": "m1", "amount": 12.5}}').encode()
        return SourceRecord("tx", 2, offset, b"c1", value, 1_767_225_600_000)

    own, later_duplicate, unstored = record(5, "tx-1"), record(9, "tx-1"), record(10, "tx-2")
    sync = StateSync(KafkaSettings(checkpoint_dir=tmp_path), _NoState(), stored_sources(store))
    first = decode_batch([own, record(7, "tx-3")], max_bytes=65536)
    assert [tx.transaction_id for tx in sync.replays(first, {"tx-1"})] == ["tx-1"]
    second = decode_batch([later_duplicate, unstored], max_bytes=65536)
    assert sync.replays(second, {"tx-1"}) == []
    assert [tx.transaction_id for tx in sync.replays(second, {"tx-1", "tx-2"}, everything=True)] == ["tx-2"]
    store.close()


class _NoState:
    """The scorer side of StateSync, unused by ``replays``."""

    feature_state = MemoryStateStore()
    label_state_prefixes: tuple[str, ...] = ()

    def update_state(self, txs: object) -> None:
        raise AssertionError("replays() only picks records")
