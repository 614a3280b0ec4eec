"""The service against the real broker, in-process: outputs, dead letters, replays, store outages."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from stream_processes import committed, wait_for

from streaming.consumer import StreamService
from streaming.metrics import StreamMetrics
from streaming.records import HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC
from streaming.scoring import RuleScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore, WriteResult

pytestmark = pytest.mark.integration

GOOD_N = 3000


def bad_records(transactions: Any) -> list[tuple[str, bytes | None]]:
    """(expected reason prefix, value) for every kind of garbage a producer may send."""
    valid = transactions(1, seed=99)[0]
    return [
        ("malformed JSON", b'{"transaction_id": "x", "amount": '),
        ("malformed JSON", b"null,null"),
        ("not UTF-8", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"),
        ("not UTF-8", bytes(range(128, 256)) * 8),
        ("payload too large", json.dumps({**valid, "transaction_id": "huge", "note": "x" * 1_500_000}).encode()),
        ("invalid field 'amount': missing", json.dumps({k: v for k, v in valid.items() if k != "amount"}).encode()),
        ("invalid field 'card_id': missing", json.dumps({**valid, "transaction_id": "nocard", "card_id": ""}).encode()),
        ("invalid field 'amount': not a number", json.dumps({**valid, "transaction_id": "w1", "amount": "12,5 EUR"}).encode()),
        ("invalid field 'timestamp'", json.dumps({**valid, "transaction_id": "w2", "timestamp": {"d": 1}}).encode()),
        ("invalid field 'merchant_id'", json.dumps({**valid, "transaction_id": "w3", "merchant_id": [1]}).encode()),
        ("expected a JSON object", b"[1, 2, 3]"),
        ("empty record", None),
    ]


def run_service(settings: KafkaSettings, store: Any, *, max_records: int, metrics: StreamMetrics | None = None) -> Any:
    service = StreamService(settings, RuleScorer(), store, metrics=metrics)
    return service.run(max_records=max_records, idle_exit_s=30)


def test_bad_record_stream_dead_letters_every_bad_record_and_scores_every_good_one(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any
) -> None:
    good = transactions(GOOD_N, seed=1)
    bad = bad_records(transactions)
    items = kafka_io.encode(good)
    # Interleave the garbage with the good records, on every partition.
    for i, (_reason, value) in enumerate(bad):
        items.insert(i * 200 + 7, (f"junk-{i}".encode(), value))
    kafka_io.produce(kafka_settings.transactions_topic, items)

    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    metrics = StreamMetrics()
    summary = run_service(kafka_settings, store, max_records=len(items), metrics=metrics)

    assert summary.consumed == len(items)
    assert store.count_scores() == GOOD_N
    expected_alerts = sum(RuleScorer().score_one(r["amount"]) >= 0.9 for r in good)
    assert store.count_alerts() == expected_alerts > 0

    scores = kafka_io.read(kafka_settings.scores_topic)
    assert Counter(json.loads(m.value)["transaction_id"] for m in scores) == Counter(r["transaction_id"] for r in good)
    alerts = kafka_io.read(kafka_settings.alerts_topic)
    assert len(alerts) == expected_alerts
    assert all(json.loads(m.value)["transaction"]["card"].startswith("****") for m in alerts)

    dlq = kafka_io.read(kafka_settings.dlq_topic)
    assert len(dlq) == len(bad)
    by_key = {m.key: m for m in dlq}
    for i, (reason, value) in enumerate(bad):
        message = by_key[f"junk-{i}".encode()]
        headers = dict(message.headers)
        assert headers[HEADER_REASON].decode().startswith(reason), headers[HEADER_REASON]
        assert message.value == value  # original bytes, huge payload included
        assert headers[HEADER_TOPIC].decode() == kafka_settings.transactions_topic
        assert int(headers[HEADER_PARTITION]) >= 0 and int(headers[HEADER_OFFSET]) >= 0

    sample = metrics.registry.get_sample_value
    assert sample("fraudlens_stream_scored_total") == GOOD_N
    assert sum(
        sample("fraudlens_stream_dead_lettered_total", {"reason": r}) or 0
        for r in {"malformed JSON", "not UTF-8 text (binary payload)", "expected a JSON object, got an array",
                  "empty record (no value)"}
    ) == 6
    store.close()


def test_replay_from_the_start_adds_no_score_row_and_no_alert(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any
) -> None:
    good = transactions(1500, seed=2)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(good))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    first = run_service(kafka_settings, store, max_records=len(good))
    alerts_before = store.count_alerts()
    scores_on_topic = len(kafka_io.read(kafka_settings.scores_topic))

    # A new group reads everything again: the worst possible replay.
    replay_settings = kafka_settings.model_copy(update={"group_id": kafka_settings.group_id + "-replay"})
    second = run_service(replay_settings, store, max_records=len(good))

    assert first.scored == len(good) and second.scored == 0
    assert second.duplicates == len(good) and second.new_alerts == 0
    assert store.count_scores() == len(good) and store.count_alerts() == alerts_before
    assert len(kafka_io.read(kafka_settings.scores_topic)) == scores_on_topic
    store.close()


class FlakyStore(SqlAlertStore):
    """Fails the first writes the way a database outage does."""

    def __init__(self, settings: StoreSettings, failures: int) -> None:
        super().__init__(settings)
        self.failures = failures

    def write(self, batch: Any) -> WriteResult:
        if self.failures > 0:
            self.failures -= 1
            raise sa_exc.OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))
        return super().write(batch)


def test_store_outage_blocks_and_retries_without_dropping(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any
) -> None:
    good = transactions(800, seed=3)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(good))
    store = FlakyStore(sqlite_store_settings, failures=4)
    store.setup()
    metrics = StreamMetrics()
    run_service(kafka_settings, store, max_records=len(good), metrics=metrics)
    assert store.count_scores() == len(good)
    assert metrics.registry.get_sample_value("fraudlens_stream_retries_total", {"step": "store write"}) == 4
    store.close()


def test_offsets_are_committed_while_the_service_runs_not_only_at_stop(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any
) -> None:
    # Commits in the loop are asynchronous (the loop never waits for the coordinator);
    # they must still land while the service is running, or a crash would replay everything.
    records = transactions(2000, seed=5)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    service = StreamService(kafka_settings.model_copy(update={"commit_interval_ms": 50}), RuleScorer(), store)
    runner = threading.Thread(target=service.run, kwargs={"idle_exit_s": 120})
    runner.start()
    try:
        wait_for(lambda: store.count_scores() == len(records), 120, "every record scored")
        wait_for(lambda: committed(kafka_settings.bootstrap, kafka_settings.group_id) == len(records), 30,
                 "the offsets of every scored record committed while running")
        assert runner.is_alive()
    finally:
        service.stop()
        runner.join(60)
    assert not runner.is_alive()
    assert committed(kafka_settings.bootstrap, kafka_settings.group_id) == len(records)
    store.close()
