"""The service with a real model: online features, calibrated XGBoost, explained alert cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from features.schema import iter_transactions
from fraudlens.settings import StateSettings
from streaming.consumer import StreamService
from streaming.replay import encode_transaction
from streaming.scoring import ModelLoadError, ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore


def test_missing_model_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        ModelScorer.load(tmp_path / "no-such-model", StateSettings())


def test_incompatible_model_fails_fast_with_a_clear_message(stream_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / stream_model.name
    shutil.copytree(stream_model, broken)
    spec = json.loads((broken / "feature_spec.json").read_text())
    spec["feature_names"] = list(reversed(spec["feature_names"]))
    (broken / "feature_spec.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="does not match|malformed|inconsistent"):
        ModelScorer.load(broken, StateSettings())


@pytest.mark.integration
def test_real_model_scores_every_transaction_and_explains_alerts(
    stream_model: Path, kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any,
) -> None:
    from features.simulator import simulate

    frame = simulate(400, 10, 21, fraud_rate_scale=5.0)
    txs = list(iter_transactions(frame.iloc[:3000]))
    kafka_io.produce(kafka_settings.transactions_topic, [(tx.card_id.encode(), encode_transaction(tx)) for tx in txs])
    scorer = ModelScorer.load(stream_model, StateSettings())
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    summary = StreamService(kafka_settings, scorer, store).run(max_records=len(txs), idle_exit_s=30)

    assert summary.scored == len(txs) == store.count_scores()
    assert summary.new_alerts == store.count_alerts() > 0, "raise fraud_rate_scale: no alert to explain"
    alert = store.list_alerts(limit=1)[0]
    card = alert["card"]
    assert card["schema_version"] == "1.0"
    assert card["model_version"] == scorer.model_version
    assert card["reasons"], "an explained card names its reasons"
    card_id = next(tx.card_id for tx in txs if tx.transaction_id == alert["transaction_id"])
    assert card_id not in json.dumps(card)  # masked
    on_topic = kafka_io.read(kafka_settings.alerts_topic)
    assert {json.loads(m.value)["transaction"]["transaction_id"] for m in on_topic} == {
        a["transaction_id"] for a in store.list_alerts(limit=10_000)
    }
    store.close()
