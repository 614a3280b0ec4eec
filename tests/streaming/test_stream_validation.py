"""Records that pass JSON parsing but break the contract's limits go to the DLQ; the ones around them are scored.

Before the contract bounded times and amounts, ``timestamp: 1e20`` raised OverflowError in
the calendar features and ``amount: 1e308`` "cannot convert float infinity to integer" in
the window kernels, after validation had let them through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from features.schema import ValidationLimits
from fraudlens.settings import StateSettings
from streaming.consumer import StreamService
from streaming.records import HEADER_REASON
from streaming.scoring import ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore

pytestmark = pytest.mark.integration


def test_out_of_range_time_and_amount_are_dead_lettered_between_scored_records(
    stream_model: Path, kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any,
    transactions: Any,
) -> None:
    good = transactions(400, seed=31)
    # Same card as their neighbours, so the features of those cards run right after them.
    hostile = {
        b"far-future": {**good[100], "transaction_id": "bad-time", "timestamp": 1e20},
        b"huge-amount": {**good[200], "transaction_id": "bad-amount", "amount": 1e308},
        b"ms-time": {**good[300], "transaction_id": "bad-ms", "timestamp": 1_767_225_600_000},
    }
    items = kafka_io.encode(good)
    for i, (key, record) in enumerate(hostile.items()):
        items.insert(100 * (i + 1), (key, json.dumps(record).encode()))
    kafka_io.produce(kafka_settings.transactions_topic, items)

    scorer = ModelScorer.load(stream_model, StateSettings())
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    try:
        summary = StreamService(kafka_settings, scorer, store).run(max_records=len(items), idle_exit_s=30)
    finally:
        store.close()

    assert summary.consumed == len(items)
    assert summary.scored == len(good) and summary.dead_lettered == len(hostile)
    scored = {json.loads(m.value)["transaction_id"] for m in kafka_io.read(kafka_settings.scores_topic)}
    assert scored == {r["transaction_id"] for r in good}
    reasons = {m.key: dict(m.headers)[HEADER_REASON].decode() for m in kafka_io.read(kafka_settings.dlq_topic)}
    assert set(reasons) == set(hostile)
    assert reasons[b"far-future"].startswith("invalid field 'timestamp': after the latest allowed time ")
    assert reasons[b"far-future"].endswith("(now + 1 day)")
    assert reasons[b"huge-amount"] == "invalid field 'amount': above the maximum amount 1,000,000,000"
    assert reasons[b"ms-time"].endswith("numbers are epoch seconds and this looks like epoch milliseconds")


def test_the_configured_limits_reach_the_stream_and_its_state_catch_up(
    stream_model: Path, kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any,
    transactions: Any,
) -> None:
    # features.max_amount set to 100: a 500.00 payment, valid under the default limit, is refused
    # by this service with the limit it was given, not the default one.
    good = [{**r, "amount": min(r["amount"], 90.0)} for r in transactions(50, seed=37)]
    large = {**good[10], "transaction_id": "large", "amount": 500.0}
    items = kafka_io.encode(good)
    items.insert(20, (b"large", json.dumps(large).encode()))
    kafka_io.produce(kafka_settings.transactions_topic, items)

    scorer = ModelScorer.load(stream_model, StateSettings())
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    limits = ValidationLimits(max_amount=100.0)
    service = StreamService(kafka_settings, scorer, store, limits=limits)
    try:
        summary = service.run(max_records=len(items), idle_exit_s=30)
    finally:
        store.close()

    assert summary.scored == len(good) and summary.dead_lettered == 1
    reasons = {m.key: dict(m.headers)[HEADER_REASON].decode() for m in kafka_io.read(kafka_settings.dlq_topic)}
    assert reasons == {b"large": "invalid field 'amount': above the maximum amount 100"}
    # The state catch-up decodes with the same limits as the live batches (else after a restart it
    # would fold into the state a record that scoring refused).
    assert service.state_sync is not None and service.state_sync.limits is limits
