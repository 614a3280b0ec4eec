"""Shadow scoring: a challenger scores live traffic on the champion's features, is recorded, never alerts."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from features.schema import iter_transactions
from fraudlens.cli import app
from fraudlens.settings import StateSettings
from streaming.broker import ensure_topics
from streaming.consumer import StreamService
from streaming.pipeline import decode_batch, score_decoded
from streaming.records import BatchOutputs, DriftSnapshot, ScoreOut, ShadowOut, SourceRecord
from streaming.replay import encode_transaction
from streaming.scoring import ModelLoadError, ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.shadow import ShadowScorer, compare, read_labels, resolve_challenger
from streaming.store import SqlAlertStore

runner = CliRunner()


@pytest.fixture(scope="module")
def challengers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two challengers of the conftest champion: one compatible (other seed, more alerts), one with other features."""
    from detection.training import train
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import FeatureSettings, ModelSettings

    frame = simulate(300, 30, 3)
    root = tmp_path_factory.mktemp("challengers")
    out = {}
    for name, features, params in (
        ("compatible", FeatureSettings(), {"seed": 7, "max_rounds": 30, "target_alert_rate": 0.03}),
        ("other_features", FeatureSettings(label_delay_days=3.0), {"max_rounds": 20}),
    ):
        bundle = train(frame, train_start=frame["timestamp"].min().date(), train_end=frame["timestamp"].max().date(),
                       pipeline=FeaturePipeline.from_settings(features),
                       settings=ModelSettings.model_validate({"early_stopping_rounds": 10, **params}),
                       data_hash="0" * 64, source="simulated")
        out[name] = bundle.save(root)
    return out


@pytest.fixture(scope="module")
def live() -> Any:
    """Out-of-training traffic with enough fraud for both models to alert."""
    from features.simulator import simulate

    return simulate(400, 10, 21, fraud_rate_scale=5.0).iloc[:3000].reset_index(drop=True)


def records_of(frame: Any) -> list[SourceRecord]:
    return [SourceRecord("tx", 0, i, tx.card_id.encode(), encode_transaction(tx), 0)
            for i, tx in enumerate(iter_transactions(frame))]


def test_the_challenger_scores_the_champions_features_and_never_alerts(
    stream_model: Path, challengers: dict[str, Path], live: Any
) -> None:
    from detection.bundle import ModelBundle

    shadow = ShadowScorer.load(ModelScorer.load(stream_model, StateSettings(), explain=False), challengers["compatible"])
    alone = ModelScorer.load(stream_model, StateSettings(), explain=False)
    outputs = score_decoded(decode_batch(records_of(live), max_bytes=65536), shadow, received_at=time.time())
    reference = score_decoded(decode_batch(records_of(live), max_bytes=65536), alone, received_at=time.time())

    # The champion's outputs are exactly what it gives without a challenger beside it.
    assert [(s.transaction_id, s.score, s.decision) for s in outputs.scores] == [
        (s.transaction_id, s.score, s.decision) for s in reference.scores]
    assert [a.transaction_id for a in outputs.alerts] == [a.transaction_id for a in reference.alerts]
    assert all(a.model_version == alone.model_version for a in outputs.alerts)

    # One shadow record per transaction: the challenger's score of the champion's own feature matrix.
    challenger = ModelBundle.from_path(challengers["compatible"])
    fresh = ModelScorer.load(stream_model, StateSettings(), explain=False)
    features = fresh.online.transform_batch(list(iter_transactions(live)))
    expected = challenger.score(features)
    shadows = outputs.shadow
    assert [h.transaction_id for h in shadows] == [s.transaction_id for s in outputs.scores]
    np.testing.assert_allclose([h.score for h in shadows], expected, rtol=1e-6)
    assert {h.model_version for h in shadows} == {shadow.challenger_version}
    assert [h.decision == "alert" for h in shadows] == list(expected >= challenger.threshold.threshold)

    challenger_only = {h.transaction_id for h in shadows if h.decision == "alert" and h.champion_decision == "pass"}
    assert challenger_only, "the challenger alerts more often than the champion: some of its alerts are its alone"
    assert not challenger_only & {a.transaction_id for a in outputs.alerts}


def test_incompatible_challengers_are_refused_at_startup(stream_model: Path, challengers: dict[str, Path]) -> None:
    champion = ModelScorer.load(stream_model, StateSettings(), explain=False)
    with pytest.raises(ModelLoadError, match=r"other feature settings.*label_delay_days.*retrain"):
        ShadowScorer.load(champion, challengers["other_features"])
    with pytest.raises(ModelLoadError, match="is the champion itself"):
        ShadowScorer.load(champion, stream_model)
    with pytest.raises(ModelLoadError, match="shadow model.*does not exist"):
        ShadowScorer.load(champion, stream_model.parent / "no-such-model")


def test_shadow_names_a_directory_or_a_registry_version(challengers: dict[str, Path], tmp_path: Path) -> None:
    from detection.bundle import ModelBundle
    from detection.registry import ModelRegistry

    registry = ModelRegistry(tmp_path / "models")
    registry.register(ModelBundle.from_path(challengers["compatible"]))
    version = challengers["compatible"].name
    assert resolve_challenger(version, registry.root) == registry.root / version
    assert resolve_challenger(str(challengers["compatible"]), tmp_path / "elsewhere") == challengers["compatible"]
    with pytest.raises(ModelLoadError, match="neither a bundle directory nor a version"):
        resolve_challenger("fl-nope", registry.root)


def test_stream_refuses_an_incompatible_shadow_before_touching_kafka(
    stream_model: Path, challengers: dict[str, Path]
) -> None:
    result = runner.invoke(app, ["stream", "--model", str(stream_model), "--shadow", str(challengers["other_features"]),
                                 "--plain-logs", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "other feature settings" in result.output


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_store(request: pytest.FixtureRequest) -> Any:
    name = "sqlite_store_settings" if request.param == "sqlite" else "pg_store_settings"
    built = SqlAlertStore(request.getfixturevalue(name))
    built.setup()
    yield built
    built.close()


def shadowed(tx_id: str, challenger: str = "v2", score: float = 0.2, event_ms: int = 1_767_261_600_000) -> ScoreOut:
    verdict = ShadowOut(tx_id, b"card", challenger, score, "alert" if score >= 0.5 else "pass", 0.5, "v1", 0.1, "pass",
                        event_ms)
    return ScoreOut(tx_id, b"card", 0.1, "pass", 0.9, "v1", event_ms, 0, 7, event_ms, 1.5, shadow=verdict)


def test_the_store_keeps_one_shadow_row_per_transaction_and_challenger(any_store: SqlAlertStore) -> None:
    first = any_store.write(BatchOutputs(scores=[shadowed("a"), shadowed("b", score=0.7)]))
    assert first.shadow == 2
    any_store.write(BatchOutputs(scores=[shadowed("b", score=0.1), shadowed("c", event_ms=1_767_300_000_000)]))  # b replayed
    any_store.write(BatchOutputs(scores=[shadowed("a", challenger="v3")]))  # another challenger, same transaction
    assert any_store.count_shadow() == 4 and any_store.count_scores() == 3
    assert any_store.shadow_pairs() == [("v1", "v2", 3), ("v1", "v3", 1)]
    rows = any_store.shadow_rows(challenger="v2")
    assert [(r["transaction_id"], r["score"], r["decision"]) for r in rows] == [
        ("a", 0.2, "pass"), ("b", 0.7, "alert"), ("c", 0.2, "pass")]  # the first write wins
    assert [r["transaction_id"] for r in any_store.shadow_rows(challenger="v2", since_ms=1_767_300_000_000)] == ["c"]
    assert any_store.count_alerts() == 0, "a challenger's alert decision never becomes an alert"

    snapshot = DriftSnapshot("v1", 1_767_261_600_123, 500, {"score": 0.3, "amount": None},
                             {"score": "major shift", "amount": "unknown"}, "host:1")
    assert any_store.write(BatchOutputs(drift=snapshot)).scores == 0
    any_store.write(BatchOutputs(drift=snapshot))  # replayed: still one row
    latest = any_store.latest_drift("v1")
    assert latest is not None and latest["psi"] == {"score": 0.3, "amount": None} and latest["window_rows"] == 500
    with any_store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM drift_snapshots")).scalar_one() == 1


def test_compare_counts_agreement_alerts_and_labelled_metrics() -> None:
    def row(i: int, champ: float, chall: float, threshold: float = 0.5) -> dict[str, Any]:
        return {"transaction_id": f"t{i}", "champion_version": "a", "model_version": "b", "event_time_ms": 1000 + i,
                "champion_score": champ, "champion_decision": "alert" if champ >= threshold else "pass",
                "score": chall, "decision": "alert" if chall >= threshold else "pass"}

    rows = [row(0, 0.9, 0.8), row(1, 0.7, 0.2), row(2, 0.1, 0.6), row(3, 0.2, 0.1)]
    report = compare(rows, {"t0": 1, "t1": 0, "t2": 1})  # t3 unlabelled
    assert (report.rows, report.both_alert, report.champion_only, report.challenger_only) == (4, 1, 1, 1)
    assert report.agreement == 0.5
    assert (report.champion.alerts, report.challenger.alerts) == (2, 2)
    assert (report.labelled, report.frauds) == (3, 2)
    # champion alerts t0 (fraud), t1 (not): precision 1/2, recall 1/2; challenger alerts t0, t2: both fraud.
    assert (report.champion.precision, report.champion.recall) == (0.5, 0.5)
    assert (report.challenger.precision, report.challenger.recall) == (1.0, 1.0)
    assert report.challenger.average_precision == 1.0
    assert report.pearson == pytest.approx(float(np.corrcoef([0.9, 0.7, 0.1, 0.2], [0.8, 0.2, 0.6, 0.1])[0, 1]))
    assert report.spearman == pytest.approx(float(np.corrcoef([4, 3, 1, 2], [4, 2, 3, 1])[0, 1]))
    assert compare(rows).champion.precision is None
    with pytest.raises(ValueError, match="several model pairs"):
        compare([*rows, {**rows[0], "model_version": "c"}])


def test_labels_files_are_validated(tmp_path: Path) -> None:
    from features.io import LabelsError

    good = tmp_path / "labels.csv"
    good.write_text("transaction_id,is_fraud\nt1,1\nt2,0\n")
    assert read_labels(good) == {"t1": 1, "t2": 0}
    bad = tmp_path / "bad.csv"
    bad.write_text("transaction_id,fraud\nt1,1\n")
    with pytest.raises(LabelsError, match="needs columns transaction_id and is_fraud"):
        read_labels(bad)


@pytest.mark.integration
def test_shadow_scoring_through_the_broker_records_every_transaction_once_and_reports_it(
    stream_model: Path, challengers: dict[str, Path], live: Any, kafka_settings: KafkaSettings,
    sqlite_store_settings: StoreSettings, kafka_io: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = kafka_settings.model_copy(update={"shadow_topic": f"{kafka_settings.scores_topic}.shadow"})
    ensure_topics(kafka.bootstrap, [kafka.shadow_topic], 4)
    txs = list(iter_transactions(live))
    kafka_io.produce(kafka.transactions_topic, [(tx.card_id.encode(), encode_transaction(tx)) for tx in txs])
    scorer = ShadowScorer.load(ModelScorer.load(stream_model, StateSettings(), explain=False), challengers["compatible"])
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    summary = StreamService(kafka, scorer, store).run(max_records=len(txs), idle_exit_s=30)
    ids = {tx.transaction_id for tx in txs}
    assert summary.scored == len(txs) == store.count_scores()

    with store.engine.connect() as conn:
        per_tx = dict(conn.execute(sa.text("SELECT transaction_id, COUNT(*) FROM shadow_scores GROUP BY transaction_id")).all())
        shadow = conn.execute(sa.text(
            "SELECT h.transaction_id, h.model_version, h.score, h.decision, h.champion_score, h.champion_decision, "
            "s.score, s.decision, s.model_version FROM shadow_scores h JOIN scores s USING (transaction_id)"
        )).all()
        alerts = conn.execute(sa.text("SELECT transaction_id, model_version FROM alerts")).all()
    assert set(per_tx) == ids and set(per_tx.values()) == {1}, "exactly one shadow row per transaction"
    assert all(r[1] == scorer.challenger_version for r in shadow)
    assert all(r[4] == r[6] and r[5] == r[7] and r[8] == scorer.model_version for r in shadow), "champion as scored"

    # Alerts are the champion's, all of them and only them; the challenger's own alerts raise nothing.
    assert {a[0] for a in alerts} == {r[0] for r in shadow if r[7] == "alert"}
    assert {a[1] for a in alerts} == {scorer.model_version}
    challenger_only = {r[0] for r in shadow if r[3] == "alert" and r[7] == "pass"}
    assert challenger_only and not challenger_only & {a[0] for a in alerts}

    on_topic = kafka_io.read(kafka.shadow_topic)
    records = [json.loads(m.value) for m in on_topic]
    assert Counter(r["transaction_id"] for r in records) == Counter(ids)
    assert {r["model_version"] for r in records} == {scorer.challenger_version}
    on_alerts_topic = {json.loads(m.value)["transaction"]["transaction_id"] for m in kafka_io.read(kafka.alerts_topic)}
    assert on_alerts_topic == {a[0] for a in alerts}

    # shadow-report against a direct computation from the store (labels from the simulator's truth).
    labels = tmp_path / "labels.csv"
    live[["transaction_id", "is_fraud"]].to_csv(labels, index=False)
    store.close()
    monkeypatch.setenv("FRAUDLENS_STORE__URL", sqlite_store_settings.url)
    result = runner.invoke(app, ["shadow-report", "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    truth = dict(zip(live["transaction_id"], live["is_fraud"].astype(int), strict=True))
    y = np.array([truth[r[0]] for r in shadow], dtype=float)
    champ_alert = np.array([r[5] == "alert" for r in shadow])
    chall_alert = np.array([r[3] == "alert" for r in shadow])
    assert report["rows"] == len(shadow) == len(txs) and report["labelled"] == len(txs)
    assert report["frauds"] == int(y.sum()) > 0
    assert report["agreement"] == pytest.approx(float((champ_alert == chall_alert).mean()))
    assert report["champion"]["alerts"] == int(champ_alert.sum()) == len(alerts)
    assert report["challenger"]["alerts"] == int(chall_alert.sum())
    assert report["challenger_only"] == len(challenger_only)
    assert report["pearson"] == pytest.approx(float(np.corrcoef([r[4] for r in shadow], [r[2] for r in shadow])[0, 1]))
    from sklearn.metrics import average_precision_score

    for side, alert, scores in (("champion", champ_alert, [r[4] for r in shadow]),
                                ("challenger", chall_alert, [r[2] for r in shadow])):
        assert report[side]["precision"] == pytest.approx(y[alert].sum() / alert.sum())
        assert report[side]["recall"] == pytest.approx(y[alert].sum() / y.sum())
        assert report[side]["average_precision"] == pytest.approx(average_precision_score(y, scores))
    assert not math.isnan(report["spearman"])

    table = runner.invoke(app, ["shadow-report", "--challenger", scorer.challenger_version, "--since", "2026-01-01"])
    assert table.exit_code == 0 and "agree on" in table.output
    missing = runner.invoke(app, ["shadow-report", "--challenger", "fl-none"])
    assert missing.exit_code == 2 and "no shadow rows" in missing.output
