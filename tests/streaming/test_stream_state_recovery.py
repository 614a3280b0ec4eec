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


def labelled(records: list[dict[str, Any]], *, seed: int) -> list[Transaction]:
    """Labels for a tenth of the transactions, known ten minutes after each: inside the replay, so
    merchant label features change while it runs."""
    import random
    from datetime import datetime, timedelta

    rng = random.Random(seed)
    out = []
    for record in records:
        if rng.random() < 0.1:
            at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")) + timedelta(minutes=10)
            out.append(Transaction.from_mapping({**record, "is_fraud": int(rng.random() < 0.3),
                                                 "label_timestamp": at.isoformat()}))
    return out


def test_kill_9_with_the_labels_topic_learns_every_label_again_and_scores_exactly(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], stream_model: Path, tmp_path: Path,
) -> None:
    from streaming.broker import ensure_topics
    from streaming.replay import encode_transaction

    n = min(KILL_N, 20_000)
    records = transactions(n, seed=33, n_cards=200)
    labels = labelled(records, seed=33)
    settings = kafka_settings.model_copy(update={
        "labels_topic": kafka_settings.transactions_topic + ".labels", "consume_labels": True,
        "checkpoint_every_s": 0.5, "checkpoint_every_records": 2000})
    ensure_topics(settings.bootstrap, [settings.labels_topic], 2)
    kafka_io.produce(settings.labels_topic, [(tx.merchant_id.encode(), encode_transaction(tx, labels=True))
                                             for tx in labels])
    kafka_io.produce(settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    kill_three_times_then_finish(settings, sqlite_store_settings, store, n, spawn, tmp_path,
                                 "--model", str(stream_model))

    reference = ModelScorer.load(stream_model, StateSettings(), explain=False)
    reference.learn_labels([reference.label_event(tx) for tx in labels])  # learning early is harmless
    txs = [Transaction.from_mapping(json.loads(json.dumps(r))) for r in records]
    expected = dict(zip((tx.transaction_id for tx in txs), reference.score_batch(txs).scores.tolist(), strict=True))
    assert_scores_equal(store, expected)
    assert_every_restart_restored_a_checkpoint(tmp_path)
    # The labels matter to these scores: without them the same run scores differently.
    without = uninterrupted_scores(stream_model, records)
    assert max(abs(without[t] - expected[t]) for t in expected) > 1e-6
    store.close()


def test_a_rebalance_hands_partitions_over_with_their_cards_history_in_memory_state(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    from collections import defaultdict

    from test_stream_scale import assigned, summary_of

    n = 20_000
    records = transactions(n, seed=34, n_cards=150)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records[: n // 2]))
    # Memory state: each process its own, so each its own checkpoint directory (client id).
    first_settings = kafka_settings.model_copy(update={"batch_size": 100, "client_id": "first"})
    second_settings = kafka_settings.model_copy(update={"batch_size": 100, "client_id": "second"})
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    first = spawn(first_settings, sqlite_store_settings, "first", "--count-in-memory")
    wait_for(lambda: count_scores(store) >= 1000, 120, "the first consumer to start scoring")
    second = spawn(second_settings, sqlite_store_settings, "second", "--count-in-memory")
    wait_for(lambda: assigned(tmp_path / "second.log"), 120, "the second consumer to get partitions")
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records[n // 2 :]))
    wait_for(lambda: count_scores(store) >= n, 240, "both consumers to score everything")
    for process in (first, second):
        process.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0 and second.wait(30) == 0
    a, b = summary_of(tmp_path / "first.log"), summary_of(tmp_path / "second.log")
    assert a["scored"] > 0 and b["scored"] > 0, "the second consumer never got partitions"

    # The new owner of a partition replayed its cards' history before scoring them: the k-th
    # transaction of a card saw k-1 before it, whichever process scored it.
    with store.engine.connect() as conn:
        score_of = dict(conn.execute(scores_table.select().with_only_columns(
            scores_table.c.transaction_id, scores_table.c.score)).all())
    seen: dict[str, int] = defaultdict(int)
    wrong = 0
    for record in records:
        s = score_of[record["transaction_id"]]
        wrong += round(s / (1.0 - s)) != seen[record["card_id"]]
        seen[record["card_id"]] += 1
    assert wrong == 0
    store.close()


def test_kill_9_before_the_first_commit_restores_the_starting_state_into_redis(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], stream_model: Path, redis_url: str, tmp_path: Path,
) -> None:
    from features.state import RedisStateStore

    # Offsets are committed only at a clean stop here (the interval outlasts any monotonic clock),
    # so the killed process commits nothing: the restart must undo every update it left in Redis
    # (the first checkpoint holds the starting state) and replay all it stored through the
    # features, without outputs.
    n = min(KILL_N, 20_000)
    records = transactions(n, seed=35)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    settings = kafka_settings.model_copy(update={"state_checkpoints": "on", "commit_interval_ms": 10**12,
                                                 "checkpoint_every_s": 0.5})
    prefix = f"fl-test-recovery:{uuid.uuid4().hex[:8]}:"
    state_arg = ("--model", str(stream_model), "--state", f"redis {redis_url} {prefix}")
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    try:
        first = spawn(settings, sqlite_store_settings, "first", *state_arg)
        wait_for(lambda: count_scores(store) >= n * 0.3, 240, "the first process to store 30%")
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert committed(settings.bootstrap, settings.group_id) == 0
        second = spawn(settings, sqlite_store_settings, "second", *state_arg)
        wait_for(lambda: count_scores(store) >= n, 300, "the restart to score everything")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]
    finally:
        RedisStateStore(redis_url, prefix).clear()
    assert_scores_equal(store, uninterrupted_scores(stream_model, records))
    store.close()
