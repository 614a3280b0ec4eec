"""The safety net against the real broker: a record that a step raises on goes to the DLQ with the
exception, the records around it are scored, the offsets move past it, a restart never sees it again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from stream_processes import committed

from detection.bundle import ModelBundle
from features.families import Geo, default_families
from features.pipeline import FeaturePipeline
from features.schema import Transaction
from features.state import MemoryStateStore
from streaming.alerts import MinimalCards
from streaming.consumer import StreamService
from streaming.records import HEADER_ERROR_CLASS, HEADER_ERROR_MESSAGE, HEADER_REASON
from streaming.scoring import ModelScorer, RuleScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore

pytestmark = pytest.mark.integration

POISON = "m-poison"


class FragileGeo(Geo):
    """Geo with a planted bug for one merchant id. The net is for bugs nobody has found yet, so no
    real family is known to raise on a validated record: the test plants one in a real family."""

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        if tx.merchant_id == POISON:
            raise ZeroDivisionError("planted bug for the test")
        return super().values_one(tx, state)


class FragileCards(MinimalCards):
    """Planted bugs in card building (one id raises) and in the card itself (one id gets a card
    that JSON cannot encode: a tuple key), for the same reason as FragileGeo."""

    def build(self, txs: Sequence[Transaction], scored: Any, rows: Sequence[int]) -> list[dict[str, Any]]:
        if any(tx.transaction_id == "card-bug" for tx in txs):
            raise KeyError("planted card bug")
        cards = super().build(txs, scored, rows)
        for tx, card in zip(txs, cards, strict=True):
            if tx.transaction_id == "output-bug":
                card[("not", "a", "json", "key")] = 1
        return cards


class RuleWithCards(RuleScorer):
    cards = FragileCards()


def dlq_by_id(kafka_io: Any, settings: KafkaSettings) -> dict[str, Any]:
    return {json.loads(m.value)["transaction_id"]: m for m in kafka_io.read(settings.dlq_topic)}


def test_a_record_a_feature_family_raises_on_is_dead_lettered_and_never_seen_again(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    stream_model: Any,
) -> None:
    good = transactions(400, seed=31)
    poison = {**good[200], "transaction_id": "poison-1", "merchant_id": POISON}
    records = [*good[:200], poison, *good[200:]]
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))

    bundle = ModelBundle.from_path(stream_model)
    families = [FragileGeo() if type(fam) is Geo else fam for fam in default_families(bundle.feature_settings)]
    online = FeaturePipeline(families, max_lateness_ms=86_400_000).online(MemoryStateStore(), refuse_late=True)
    scorer = ModelScorer(bundle, online)
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    summary = StreamService(kafka_settings, scorer, store).run(max_records=len(records), idle_exit_s=30)

    assert summary.scored == len(good) and store.count_scores() == len(good)
    assert summary.dead_lettered == 1
    dead = dlq_by_id(kafka_io, kafka_settings)
    headers = dict(dead["poison-1"].headers)
    assert headers[HEADER_ERROR_CLASS] == b"ZeroDivisionError"
    assert headers[HEADER_ERROR_MESSAGE] == b"planted bug for the test"
    assert headers[HEADER_REASON].decode() == (
        "processing failed in feature family 'geo': ZeroDivisionError: planted bug for the test")
    assert committed(kafka_settings.bootstrap, kafka_settings.group_id) == len(records)

    again = StreamService(kafka_settings, scorer, store).run(idle_exit_s=3)
    assert again.consumed == 0 and len(dlq_by_id(kafka_io, kafka_settings)) == 1
    store.close()


def test_records_whose_card_or_output_cannot_be_built_are_dead_lettered(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
) -> None:
    good = transactions(300, seed=32)
    card_bug = {**good[100], "transaction_id": "card-bug", "amount": 5000.0}  # alerts under RuleScorer
    output_bug = {**good[150], "transaction_id": "output-bug", "amount": 5000.0}
    records = [*good[:120], card_bug, *good[120:200], output_bug, *good[200:]]
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()

    summary = StreamService(kafka_settings, RuleWithCards(), store).run(max_records=len(records), idle_exit_s=30)

    assert summary.scored == len(good) == store.count_scores()
    expected_alerts = sum(RuleScorer().score_one(r["amount"]) >= 0.9 for r in good)
    assert store.count_alerts() == expected_alerts
    dead = dlq_by_id(kafka_io, kafka_settings)
    assert set(dead) == {"card-bug", "output-bug"}
    card = dict(dead["card-bug"].headers)
    assert card[HEADER_REASON].decode() == "processing failed in alert card: KeyError: 'planted card bug'"
    assert card[HEADER_ERROR_CLASS] == b"KeyError"
    output = dict(dead["output-bug"].headers)
    assert output[HEADER_REASON].decode().startswith("processing failed in alert record: TypeError: keys must be")
    assert output[HEADER_ERROR_CLASS] == b"TypeError"
    assert committed(kafka_settings.bootstrap, kafka_settings.group_id) == len(records)
    store.close()
