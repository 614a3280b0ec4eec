"""Labels online: the stream learns the labels topic, so label-based features equal training's.

The strongest check there is: scores written by the real consumer through the real
broker equal the batch scores of the same transactions (``detection.scoring``), which
compute every feature from all labels known at each transaction's time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from detection.bundle import ModelBundle
from detection.scoring import score_window
from features.pipeline import FeaturePipeline
from features.schema import Transaction, iter_transactions
from features.simulator import simulate
from features.state import MemoryStateStore, RoutedStateStore
from streaming.broker import ensure_topics
from streaming.consumer import StreamService
from streaming.labels import LabelFeed
from streaming.replay import encode_transaction
from streaming.scoring import ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore, scores_table

CUTOFF = pd.Timestamp("2026-01-25", tz="UTC")


def _world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = simulate(200, 32, 8, start="2026-01-01", fraud_rate_scale=4.0)
    ordered = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return ordered, ordered[ordered["timestamp"] < CUTOFF], ordered[ordered["timestamp"] >= CUTOFF]


def _pending_labels(pipeline: FeaturePipeline, frame: pd.DataFrame, after: pd.Timestamp) -> list[Transaction]:
    labels = pipeline.label_frame(frame)
    later = labels[labels["known_at_ms"] > after.value // 1_000_000]
    known_at = dict(zip(later["transaction_id"], later["known_at_ms"].astype(int), strict=True))
    rows = frame[frame["transaction_id"].isin(known_at)]
    return [dataclasses.replace(tx, label_timestamp_ms=known_at[tx.transaction_id]) for tx in iter_transactions(rows)]


def _warm(bundle: ModelBundle, history: pd.DataFrame) -> Any:
    online = FeaturePipeline.from_settings(bundle.feature_settings).online(MemoryStateStore())
    online.replay(history)
    return online


@pytest.mark.integration
def test_stream_with_the_labels_topic_scores_exactly_as_training_would(
    stream_model: Path, kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any,
) -> None:
    frame, history, live = _world()
    bundle = ModelBundle.from_path(stream_model)
    pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    settings = kafka_settings.model_copy(update={"labels_topic": kafka_settings.transactions_topic + ".labels",
                                                 "consume_labels": True})
    ensure_topics(settings.bootstrap, [settings.labels_topic], 2)
    pending = _pending_labels(pipeline, frame, history["timestamp"].max())
    assert any(tx.is_fraud for tx in pending), "the live window needs fraud labels for this check to mean anything"
    kafka_io.produce(settings.labels_topic, [(tx.merchant_id.encode(), encode_transaction(tx, labels=True))
                                             for tx in pending])
    txs = list(iter_transactions(live))
    kafka_io.produce(settings.transactions_topic, [(tx.card_id.encode(), encode_transaction(tx)) for tx in txs])

    scorer = ModelScorer(bundle, _warm(bundle, history))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    service = StreamService(settings, scorer, store)
    summary = service.run(max_records=len(txs), idle_exit_s=30)
    assert summary.scored == len(txs)
    assert service.metrics.labels._value.get() == len(pending)  # every label learnt, none rejected

    with store.engine.connect() as conn:
        streamed = dict(conn.execute(select(scores_table.c.transaction_id, scores_table.c.score)).all())
    store.close()
    batch = score_window(frame, bundle, pipeline, CUTOFF.date(), frame["timestamp"].max().date())
    expected = dict(zip(batch["transaction_id"], batch["score"], strict=True))
    assert streamed.keys() == expected.keys()
    diffs = np.array([abs(streamed[t] - expected[t]) for t in expected])
    assert diffs.max() <= 1e-9, f"{int((diffs > 1e-9).sum())} transactions scored differently online"

    # The same live traffic without the labels (features frozen at warm-up) scores differently:
    # the check above could fail, and labels online is what makes it pass.
    frozen = ModelScorer(bundle, _warm(bundle, history))
    without = np.concatenate([frozen.score_batch(txs[i:i + 500]).scores for i in range(0, len(txs), 500)])
    assert max(abs(s - expected[tx.transaction_id]) for s, tx in zip(without, txs, strict=True)) > 1e-6


def test_label_feed_rejects_records_without_a_label_or_with_bad_fields(
    kafka_settings: KafkaSettings, kafka_io: Any,
) -> None:
    settings = kafka_settings.model_copy(update={"labels_topic": kafka_settings.transactions_topic + ".labels"})
    ensure_topics(settings.bootstrap, [settings.labels_topic], 1)
    good = Transaction("t1", 1_767_225_600_000, "c1", "m1", 10.0, is_fraud=1)
    unlabelled = Transaction("t2", 1_767_225_600_000, "c1", "m1", 10.0)
    kafka_io.produce(settings.labels_topic, [(b"m1", encode_transaction(good, labels=True)),
                                             (b"m1", encode_transaction(unlabelled, labels=True)),
                                             (b"m1", b"{not json")])
    pipeline = FeaturePipeline.from_settings()
    feed = LabelFeed(settings, pipeline.label_event)
    try:
        events = feed.catch_up(timeout_s=60)
    finally:
        feed.close()
    assert [e.transaction_id for e in events] == ["t1"]
    assert events[0].known_at_ms == good.timestamp_ms + pipeline.label_delay_ms and events[0].is_fraud == 1
    assert feed.rejected == 2


def test_routed_store_keeps_merchant_state_local_and_the_rest_in_the_default_store() -> None:
    shared, local = MemoryStateStore(), MemoryStateStore()
    store = RoutedStateStore(shared, {"merchant:": local})
    store.save_many({"card:c1": {"a": 1}, "merchant:m1": {"b": 2}}, None)
    assert shared.load_many(["card:c1", "merchant:m1"]) == {"card:c1": {"a": 1}}
    assert local.load_many(["card:c1", "merchant:m1"]) == {"merchant:m1": {"b": 2}}
    assert store.load_many(["merchant:m1", "card:c1", "card:none"]) == {"merchant:m1": {"b": 2}, "card:c1": {"a": 1}}
