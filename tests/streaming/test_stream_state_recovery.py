"""A crash must not change later scores: kill -9 at three points of a replay, every stored score
equal to an uninterrupted run's (real model, online features; state in memory, then in Redis).

The killed process is the real service (``streaming.service.serve`` in a subprocess) scoring
with a real :class:`~streaming.scoring.ModelScorer`, whose card features depend on each card's
whole history: a restart that lost or doubled any of it would score differently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stream_processes import committed, count_scores, wait_for

from features.schema import Transaction
from fraudlens.settings import StateSettings
from streaming.scoring import ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore, scores_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The issue's 100,000; FRAUDLENS_TEST_STATE_KILL_N=20000 for a quicker run.
KILL_N = int(os.environ.get("FRAUDLENS_TEST_STATE_KILL_N", "100000"))
#: Where the three processes are killed, as shares of the transactions stored.
KILL_AT = (0.2, 0.5, 0.8)


def uninterrupted_scores(model: Path, records: list[dict[str, Any]]) -> dict[str, float]:
    """Scores of one process that sees every transaction once, in the order produced (per card, the
    order every consumer sees: records are keyed by card)."""
    scorer = ModelScorer.load(model, StateSettings(), explain=False)
    txs = [Transaction.from_mapping(json.loads(json.dumps(r))) for r in records]
    scores: dict[str, float] = {}
    for start in range(0, len(txs), 5000):
        chunk = txs[start : start + 5000]
        scores.update(zip((tx.transaction_id for tx in chunk), scorer.score_batch(chunk).scores.tolist(), strict=True))
    return scores


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def kill_three_times_then_finish(
    settings: KafkaSettings, store_settings: StoreSettings, store: SqlAlertStore, n: int,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path, *extra: str,
) -> None:
    for i, share in enumerate(KILL_AT):
        process = spawn(settings, store_settings, f"run{i}", *extra)
        wait_for(lambda share=share: count_scores(store) >= n * share, 240, f"run {i} to store {share:.0%}")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert count_scores(store) < n, "the replay finished before the kill; raise FRAUDLENS_TEST_STATE_KILL_N"
    final = spawn(settings, store_settings, "final", *extra)
    wait_for(lambda: count_scores(store) >= n, 300, "the last restart to score everything")
    final.send_signal(signal.SIGTERM)
    assert final.wait(30) == 0, (tmp_path / "final.log").read_text()[-3000:]


def assert_every_restart_restored_a_checkpoint(tmp_path: Path) -> None:
    for name in ("run1", "run2", "final"):
        lines = log_lines(tmp_path / f"{name}.log")
        assert any(line.get("message") == "feature state restored" for line in lines), name


def assert_scores_equal(store: SqlAlertStore, expected: dict[str, float]) -> None:
    with store.engine.connect() as conn:
        stored = dict(conn.execute(scores_table.select().with_only_columns(
            scores_table.c.transaction_id, scores_table.c.score)).all())
    assert set(stored) == set(expected)
    ids = sorted(expected)
    got, want = np.array([stored[i] for i in ids]), np.array([expected[i] for i in ids])
    differing = int(np.sum(np.abs(got - want) > 1e-9))
    assert differing == 0, f"{differing} of {len(ids)} scores differ from the uninterrupted run"


def test_kill_9_three_times_with_memory_state_scores_exactly_as_an_uninterrupted_run(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], stream_model: Path, tmp_path: Path,
) -> None:
    records = transactions(KILL_N, seed=31)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    settings = kafka_settings.model_copy(update={"checkpoint_every_s": 0.5, "checkpoint_every_records": 5000})
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    kill_three_times_then_finish(settings, sqlite_store_settings, store, KILL_N, spawn, tmp_path,
                                 "--model", str(stream_model))
    assert committed(settings.bootstrap, settings.group_id) == KILL_N
    assert_scores_equal(store, uninterrupted_scores(stream_model, records))
    assert_every_restart_restored_a_checkpoint(tmp_path)
    store.close()


def test_kill_9_three_times_with_redis_state_scores_exactly_as_an_uninterrupted_run(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], stream_model: Path, redis_url: str, tmp_path: Path,
) -> None:
    from features.state import RedisStateStore

    records = transactions(KILL_N, seed=32)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    # One process owns every partition, so it may restore checkpoints into Redis.
    settings = kafka_settings.model_copy(update={"checkpoint_every_s": 0.5, "checkpoint_every_records": 5000,
                                                 "state_checkpoints": "on"})
    prefix = f"fl-test-recovery:{uuid.uuid4().hex[:8]}:"
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    try:
        kill_three_times_then_finish(settings, sqlite_store_settings, store, KILL_N, spawn, tmp_path,
                                     "--model", str(stream_model), "--state", f"redis {redis_url} {prefix}")
    finally:
        RedisStateStore(redis_url, prefix).clear()
    assert_scores_equal(store, uninterrupted_scores(stream_model, records))
    assert_every_restart_restored_a_checkpoint(tmp_path)
    store.close()
