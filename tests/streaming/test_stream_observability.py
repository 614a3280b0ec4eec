"""Metrics and structured logs: JSON lines with fields, never PII."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import numpy as np
import pytest

from streaming.broker import free_port
from streaming.consumer import StreamService
from streaming.logs import JsonFormatter
from streaming.metrics import BatchHistogram, StreamMetrics, dead_letter_reason_label
from streaming.scoring import RuleScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore


def test_json_formatter_writes_one_object_with_extra_fields() -> None:
    record = logging.makeLogRecord({"name": "streaming.consumer", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "partitions assigned", "partitions": [0, 1]})
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "partitions assigned" and line["partitions"] == [0, 1]
    assert line["level"] == "info" and line["time"].endswith("Z")


def test_dead_letter_reason_labels_have_low_cardinality() -> None:
    assert dead_letter_reason_label("payload too large: 123 bytes > 100") == "payload too large"
    assert dead_letter_reason_label("invalid field 'amount': negative amount") == "invalid field 'amount'"


def test_batch_histogram_exposes_what_a_prometheus_histogram_would() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    buckets = (0.001, 0.01, 0.1, 1.0, 2.5)
    reference, batched = CollectorRegistry(), CollectorRegistry()
    one_by_one = Histogram("e2e_seconds", "doc", buckets=buckets, registry=reference)
    in_batches = BatchHistogram("e2e_seconds", "doc", buckets=buckets, registry=batched)
    # Values on the bounds belong to that bound's bucket (le), above the last one to +Inf only.
    values = [0.0005, 0.001, 0.005, 0.01, 0.01000001, 0.5, 1.0, 2.5, 3.0, 100.0]
    for value in values:
        one_by_one.observe(value)
    in_batches.observe_many(np.array(values[:4]))
    in_batches.observe_many(np.array([]))
    in_batches.observe_many(np.array(values[4:]))

    def exposition(registry: CollectorRegistry) -> dict[str, float]:
        lines = generate_latest(registry).decode().splitlines()
        return {name: float(value) for name, value in (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
                if "_created" not in name}

    expected, got = exposition(reference), exposition(batched)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    assert got['e2e_seconds_bucket{le="0.01"}'] == 4 and got["e2e_seconds_count"] == len(values)


def test_metrics_are_served_over_http() -> None:
    metrics = StreamMetrics()
    metrics.scored.inc(3)
    port = free_port()
    metrics.serve(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "fraudlens_stream_scored_total 3.0" in body


@pytest.mark.integration
def test_service_logs_and_metrics_carry_no_card_numbers_or_amounts(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = transactions(300, seed=5)
    items = kafka_io.encode(records) + [(b"4000999988887777", b'{"card_id": "4000999988887777", "amount": "x"}')]
    kafka_io.produce(kafka_settings.transactions_topic, items)
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    metrics = StreamMetrics()
    with caplog.at_level(logging.DEBUG, logger="streaming"):
        StreamService(kafka_settings, RuleScorer(), store, metrics=metrics).run(max_records=len(items), idle_exit_s=30)
    store.close()
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records if r.name.startswith("streaming"))
    assert "partitions assigned" in text
    secrets = {r["card_id"] for r in records} | {"4000999988887777"} | {str(r["amount"]) for r in records if r["amount"] > 100}
    assert not [s for s in secrets if s in text]

    sample = metrics.registry.get_sample_value
    assert sample("fraudlens_stream_consumed_total") == len(items)
    assert sample("fraudlens_stream_dead_lettered_total", {"reason": "invalid field 'transaction_id'"}) == 1
    assert (sample("fraudlens_stream_batch_size_count") or 0) >= 1
    assert sample("fraudlens_stream_end_to_end_seconds_count") == len(records)
    assert (sample("fraudlens_stream_processing_seconds_count") or 0) >= 1


class _Consumer:
    """Just enough of KafkaConsumer for the lag gauge."""

    def assignment(self) -> set[Any]:
        from kafka import TopicPartition

        return {TopicPartition("transactions", 0), TopicPartition("transactions", 1)}

    def highwater(self, tp: Any) -> int | None:
        return {0: 10, 1: None}[tp.partition]

    def position(self, tp: Any, timeout_ms: int | None = None) -> int:
        return 7


def test_consumer_lag_is_highwater_minus_position_per_partition(sqlite_store_settings: StoreSettings) -> None:
    metrics = StreamMetrics()
    service = StreamService(KafkaSettings(), RuleScorer(), SqlAlertStore(sqlite_store_settings), metrics=metrics)
    service._update_lag(_Consumer())
    sample = metrics.registry.get_sample_value
    assert sample("fraudlens_stream_consumer_lag", {"topic": "transactions", "partition": "0"}) == 3
    assert sample("fraudlens_stream_consumer_lag", {"topic": "transactions", "partition": "1"}) is None  # unknown yet
