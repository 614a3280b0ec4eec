"""Live drift: rolling bin counts against the training reference, PSI snapshots, gauges, the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from detection.drift import PSI_ALERT, PSI_WARN, Binned, BinnedReference, psi
from features.schema import iter_transactions
from fraudlens.settings import StateSettings
from streaming.consumer import StreamService
from streaming.drift import DriftMonitor
from streaming.metrics import StreamMetrics
from streaming.pipeline import decode_batch, score_decoded
from streaming.records import BatchOutputs, SourceRecord
from streaming.replay import encode_transaction
from streaming.scoring import ModelScorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore

QUARTERS = Binned(cuts=np.array([0.25, 0.5, 0.75]), shares=np.array([0.25, 0.25, 0.25, 0.25, 0.0]))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def reference(features: dict[str, Binned] | None = None) -> BinnedReference:
    features = features or {}
    return BinnedReference(score=QUARTERS, features=features, importance=list(features), n_rows=100, window={})


def test_the_window_holds_the_latest_batches_and_evicts_whole_old_ones() -> None:
    monitor = DriftMonitor(reference(), [], "v1", window=10, min_rows=1)
    monitor.observe(np.full(4, 0.1), None)  # bin 0
    monitor.observe(np.full(4, 0.3), None)  # bin 1
    assert monitor.rows == 8
    assert monitor.counts()["score"].tolist() == [4, 4, 0, 0, 0]
    monitor.observe(np.full(4, 0.6), None)  # 12 rows > 10: the first batch leaves
    assert monitor.rows == 8
    assert monitor.counts()["score"].tolist() == [0, 4, 4, 0, 0]
    monitor.observe(np.array([0.9, np.nan, np.inf, 0.25]), None)  # NaN and inf are missing; 0.25 is right-closed
    assert monitor.counts()["score"].tolist() == [1, 0, 4, 1, 2]
    monitor.observe(np.full(30, 0.6), None)  # one batch larger than the window is kept whole, alone
    assert monitor.rows == 30
    assert monitor.counts()["score"].tolist() == [0, 0, 30, 0, 0]


def test_counts_and_psi_equal_the_offline_functions_on_the_summed_window() -> None:
    rng = np.random.default_rng(0)
    features = {name: Binned.fit(rng.normal(size=2000)) for name in ("a", "b", "c")}
    # "c" is watched but sits first in the matrix; "b" is not among the top 2.
    monitor = DriftMonitor(reference({"a": features["a"], "c": features["c"], "b": features["b"]}), ["c", "a", "b"],
                           "v1", window=1000, top=2, min_rows=1)
    assert monitor.variables == ["score", "a", "c"]
    batches = []
    for i in range(7):
        n = 150 + 10 * i
        X = rng.normal(loc=0.1 * i, size=(n, 3))
        X[rng.random(n) < 0.05, 1] = np.nan
        scores = rng.beta(1, 1 + i, size=n)
        batches.append((scores, X))
        monitor.observe(scores, X)
    # 150..210 rows a batch: the last 5 (210+200+190+180+170 = 950) fit in 1000, the last 6 would not.
    kept = batches[-5:]
    assert monitor.rows == sum(len(s) for s, _ in kept) == 950
    expected = {
        "score": sum(QUARTERS.counts(s) for s, _ in kept),
        "a": sum(features["a"].counts(X[:, 1]) for _, X in kept),
        "c": sum(features["c"].counts(X[:, 0]) for _, X in kept),
    }
    got = monitor.counts()
    values = monitor.psi()
    for name, counts in expected.items():
        np.testing.assert_array_equal(got[name], counts)
        ref = QUARTERS if name == "score" else features[name]
        assert values[name] == pytest.approx(psi(ref.shares, counts), rel=1e-12)
    assert expected["a"][-1] > 0, "the missing bin is exercised"


def test_shifted_live_data_is_flagged_and_the_same_population_is_not() -> None:
    rng = np.random.default_rng(1)
    amount = Binned.fit(rng.lognormal(3.5, 1.0, size=20_000))
    monitor = DriftMonitor(reference({"amount": amount}), ["amount"], "v1", window=5000, min_rows=1)
    for _ in range(5):
        monitor.observe(rng.random(1000), rng.lognormal(3.5, 1.0, size=(1000, 1)))
    calm = monitor.snapshot()
    assert calm.flags == {"score": "stable", "amount": "stable"}
    assert calm.psi["amount"] < PSI_WARN
    for _ in range(5):  # the whole window is replaced by larger amounts and higher scores
        monitor.observe(0.75 + 0.25 * rng.random(1000), rng.lognormal(5.0, 1.0, size=(1000, 1)))
    shifted = monitor.snapshot()
    assert shifted.window_rows == 5000
    assert shifted.flags == {"score": "major shift", "amount": "major shift"}
    assert shifted.psi["amount"] > PSI_ALERT


def test_snapshots_come_every_n_seconds_or_batches_once_the_window_has_enough_rows() -> None:
    clock = Clock()
    monitor = DriftMonitor(reference(), [], "v1", window=100, every_s=60, every_batches=3, min_rows=20, clock=clock)
    metrics = StreamMetrics()
    monitor.export_to(metrics.drift_psi)
    taken = [monitor.observe(np.full(10, 0.1), None) for _ in range(4)]
    # Batch 3 is due by count but the window holds 30 rows only from then on: min_rows=20 is met at batch 2.
    assert [s is not None for s in taken] == [False, False, True, False]
    clock.now += 61
    snapshot = monitor.observe(np.full(10, 0.9), None)
    assert snapshot is not None and snapshot.taken_at_ms == int(clock.now * 1000)
    assert snapshot.window_rows == 50
    expected = psi(QUARTERS.shares, [40, 0, 0, 10, 0])
    assert snapshot.psi["score"] == pytest.approx(expected)
    gauge = metrics.registry.get_sample_value("fraudlens_drift_psi", {"model_version": "v1", "variable": "score"})
    assert gauge == pytest.approx(expected)
    assert monitor.observe(np.full(10, 0.9), None) is None  # neither 60 s nor 3 batches since


def test_an_empty_window_is_unknown_not_stable() -> None:
    monitor = DriftMonitor(reference(), [], "v1", window=10, min_rows=1)
    snapshot = monitor.snapshot()
    assert snapshot.psi == {"score": None} and snapshot.flags == {"score": "unknown"}


def test_the_model_scorer_feeds_the_monitor_and_the_store_keeps_its_snapshots(
    stream_model: Path, tmp_path: Path
) -> None:
    from features.simulator import simulate

    champion = ModelScorer.load(stream_model, StateSettings(), explain=False)
    settings = KafkaSettings(drift_window=1500, drift_every_batches=1, drift_min_rows=100, drift_top_features=10)
    champion.drift = DriftMonitor.for_bundle(champion.bundle, settings)
    assert champion.drift is not None
    assert champion.drift.variables == ["score", *champion.bundle.reference.importance[:10]]
    assert DriftMonitor.for_bundle(champion.bundle, settings.model_copy(update={"drift_window": 0})) is None

    frame = simulate(200, 6, 31)
    amount_shifted = frame.assign(amount=frame["amount"] * 50.0)
    store = SqlAlertStore(StoreSettings(url=f"sqlite:///{tmp_path / 'store.db'}"))
    store.setup()
    snapshots = []
    calm_rows = 1000
    for part, data in enumerate((frame.iloc[:calm_rows], amount_shifted.iloc[calm_rows:])):
        records = [SourceRecord("tx", 0, part * 10_000 + i, None, encode_transaction(tx), 0)
                   for i, tx in enumerate(iter_transactions(data))]
        outputs = score_decoded(decode_batch(records, max_bytes=65536), champion, received_at=time.time())
        assert outputs.drift is not None, "drift_every_batches=1 takes a snapshot on every batch"
        store.write(outputs)
        snapshots.append(outputs.drift)
        time.sleep(0.002)  # distinct taken_at
    calm, shifted = snapshots
    # The second batch overflows the 1500-row window: the calm one leaves, the window is all shifted.
    assert calm.window_rows == calm_rows and shifted.window_rows == len(frame) - calm_rows
    assert shifted.flags["amount"] == "major shift"
    assert shifted.psi["amount"] > calm.psi["amount"]

    latest = store.latest_drift(champion.model_version)
    assert latest is not None
    assert latest["window_rows"] == shifted.window_rows and latest["flags"] == shifted.flags
    assert latest["psi"] == pytest.approx(shifted.psi)
    assert store.latest_drift("no-such-version") is None
    store.write(BatchOutputs(drift=shifted))  # a replayed snapshot is not stored twice
    store.close()


@pytest.mark.integration
def test_the_stream_persists_drift_snapshots_through_the_broker(
    stream_model: Path, kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any,
) -> None:
    """Needs the consumer to hand the whole batch to the store (``store.write(batch)``): drift rides on it."""
    from features.simulator import simulate

    txs = list(iter_transactions(simulate(200, 6, 31)))
    kafka_io.produce(kafka_settings.transactions_topic, [(tx.card_id.encode(), encode_transaction(tx)) for tx in txs])
    scorer = ModelScorer.load(stream_model, StateSettings(), explain=False)
    settings = kafka_settings.model_copy(update={"drift_every_batches": 1, "drift_min_rows": 1})
    scorer.drift = DriftMonitor.for_bundle(scorer.bundle, settings)
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    summary = StreamService(settings, scorer, store).run(max_records=len(txs), idle_exit_s=30)
    assert summary.scored == len(txs)
    latest = store.latest_drift(scorer.model_version)
    assert latest is not None, "no drift snapshot in the store: does the consumer call store.write(batch)?"
    assert latest["window_rows"] == scorer.drift.rows and set(latest["psi"]) == set(scorer.drift.variables)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM drift_snapshots")).scalar_one() == summary.batches
    store.close()
