"""A transaction id seen again: the same content is a replay (skipped, counted as a duplicate),
other content is a conflict (dead-lettered), within one batch and across batches, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from streaming.consumer import StreamService
from streaming.pipeline import DUPLICATE_CONFLICT, content_fingerprint, decode_batch, score_decoded
from streaming.records import HEADER_FIELD, HEADER_REASON, SourceRecord
from streaming.scoring import RuleScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore

GOOD: dict[str, Any] = {
    "transaction_id": "t-1",
    "timestamp": "2026-01-01T10:00:00Z",
    "card_id": "4000000000001234",
    "merchant_id": "m-1",
    "amount": 12.5,
    "currency": "EUR",
}


def record(value: bytes, offset: int) -> SourceRecord:
    return SourceRecord("transactions", 0, offset, b"card", value, 1_767_261_600_000)


def test_within_a_batch_the_same_content_is_a_duplicate_and_other_content_a_dead_letter() -> None:
    same_content_other_bytes = b'{ "amount": 12.50, "merchant_id": "m-1", "card_id": "4000000000001234", ' \
        b'"timestamp": "2026-01-01T10:00:00+00:00", "transaction_id": "t-1", "currency": "EUR" }'
    decoded = decode_batch(
        [record(json.dumps(GOOD).encode(), 0), record(same_content_other_bytes, 1),
         record(json.dumps({**GOOD, "amount": 99.0}).encode(), 2)],
        max_bytes=65536,
    )
    assert [tx.transaction_id for tx in decoded.transactions] == ["t-1"]
    assert decoded.duplicates == 1
    (dead,) = decoded.dead
    assert dead.reason == DUPLICATE_CONFLICT == "duplicate transaction id, different content"
    assert dead.source.offset == 2 and dict(dead.headers())[HEADER_FIELD] == b"transaction_id"


def test_a_label_sent_later_for_the_same_transaction_is_not_a_conflict() -> None:
    decoded = decode_batch([record(json.dumps(GOOD).encode(), 0),
                            record(json.dumps({**GOOD, "is_fraud": 1}).encode(), 1)], max_bytes=65536)
    assert decoded.duplicates == 1 and decoded.dead == []


def scored_batch(payloads: list[dict[str, Any]], first_offset: int = 0) -> Any:
    records = [record(json.dumps(p).encode(), first_offset + i) for i, p in enumerate(payloads)]
    return decode_batch(records, max_bytes=65536)


def test_across_batches_the_store_tells_a_replay_from_a_conflict(store: SqlAlertStore) -> None:
    first = scored_batch([GOOD, {**GOOD, "transaction_id": "t-2"}])
    store.write(score_decoded(first, RuleScorer(), received_at=time.time()))
    assert store.scored_fingerprints(["t-1", "t-2", "t-3"]) == {
        tx.transaction_id: content_fingerprint(tx) for tx in first.transactions
    }

    later = scored_batch([GOOD, {**GOOD, "transaction_id": "t-2", "amount": 13.0}, {**GOOD, "transaction_id": "t-3"}],
                         first_offset=10)
    to_score, replayed = later.split_replayed(store.scored_fingerprints(["t-1", "t-2", "t-3"]))
    assert [tx.transaction_id for tx in to_score.transactions] == ["t-3"]
    assert [tx.transaction_id for tx in replayed.transactions] == ["t-1"] and to_score.duplicates == 1
    (dead,) = to_score.dead
    assert (dead.reason, dead.source.offset) == (DUPLICATE_CONFLICT, 11)


def test_a_score_stored_before_fingerprints_counts_as_the_same_content(store: SqlAlertStore) -> None:
    store.write(score_decoded(scored_batch([GOOD]), RuleScorer(), received_at=time.time()))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE scores SET fingerprint = NULL"))
    to_score, replayed = scored_batch([{**GOOD, "amount": 1.0}]).split_replayed(store.scored_fingerprints(["t-1"]))
    assert to_score.transactions == [] and to_score.dead == [] and len(replayed.transactions) == 1


def test_setup_adds_the_fingerprint_column_to_a_store_created_before_it(sqlite_store_settings: StoreSettings) -> None:
    engine = sa.create_engine(sqlite_store_settings.url)
    with engine.begin() as conn:  # the scores table as stores created it before the column existed
        conn.execute(sa.text(
            "CREATE TABLE scores (transaction_id VARCHAR(128) PRIMARY KEY, score FLOAT NOT NULL, decision VARCHAR(8) "
            "NOT NULL, threshold FLOAT NOT NULL, model_version VARCHAR(64) NOT NULL, event_time_ms BIGINT NOT NULL, "
            "source_partition INTEGER NOT NULL, source_offset BIGINT NOT NULL, processing_ms FLOAT NOT NULL, "
            "scored_at DATETIME NOT NULL)"))
        conn.execute(sa.text("INSERT INTO scores VALUES ('t-1', 0.1, 'pass', 0.9, 'v1', 1, 0, 0, 1.0, '2026-01-01')"))
    engine.dispose()
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    store.setup()  # idempotent
    assert store.scored_fingerprints(["t-1"]) == {"t-1": None}
    store.write(score_decoded(scored_batch([{**GOOD, "transaction_id": "t-2"}]), RuleScorer(), received_at=time.time()))
    assert store.scored_fingerprints(["t-2"])["t-2"] is not None
    store.close()


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_stream_dead_letters_a_conflicting_duplicate_and_skips_a_replay(
    backend: str, request: pytest.FixtureRequest, kafka_settings: KafkaSettings, kafka_io: Any, transactions: Any,
) -> None:
    settings: StoreSettings = request.getfixturevalue("sqlite_store_settings" if backend == "sqlite"
                                                       else "pg_store_settings")
    store = SqlAlertStore(settings)
    store.setup()
    first = transactions(200, seed=41)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(first))
    StreamService(kafka_settings, RuleScorer(), store).run(max_records=len(first), idle_exit_s=30)

    replay = first[10]
    conflict = {**first[20], "amount": first[20]["amount"] + 1.0}
    fresh = transactions(50, seed=42)
    second = [replay, conflict, *fresh]
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(second))
    summary = StreamService(kafka_settings, RuleScorer(), store).run(max_records=len(second), idle_exit_s=30)

    assert summary.scored == len(fresh) and summary.duplicates == 1 and summary.dead_lettered == 1
    assert store.count_scores() == len(first) + len(fresh)
    (dead,) = kafka_io.read(kafka_settings.dlq_topic)
    assert json.loads(dead.value) == conflict
    assert dict(dead.headers)[HEADER_REASON] == b"duplicate transaction id, different content"
    # The first content's score stands.
    with store.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT score FROM scores WHERE transaction_id = :i"),
                            {"i": first[20]["transaction_id"]}).scalar_one()
    assert kept == pytest.approx(RuleScorer().score_one(first[20]["amount"]))
    store.close()


def test_an_id_the_database_cannot_encode_does_not_break_the_replay_check(store: SqlAlertStore) -> None:
    store.write(score_decoded(scored_batch([GOOD]), RuleScorer(), received_at=time.time()))
    found = store.scored_fingerprints(["t-1", "t-\ud800"])  # a lone surrogate: never storable
    assert list(found) == ["t-1"]
