"""Training end to end on simulated data."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detection import ModelBundle, TrainingError, compute_features, train
from detection.bundle import REQUIRED_FILES
from detection.metrics import EVALUATION_KEYS
from detection.training import labelled_window, split_by_time
from features.pipeline import FeaturePipeline
from fraudlens.settings import ModelSettings


def test_bundle_has_every_file_and_a_complete_manifest(tiny_bundle: ModelBundle, windows: Any) -> None:
    assert tiny_bundle.path is not None and tiny_bundle.path.name == tiny_bundle.version
    assert tiny_bundle.version.startswith("fl-") and len(tiny_bundle.version) == 15
    for name in REQUIRED_FILES:
        assert (tiny_bundle.path / name).is_file(), name
    manifest = tiny_bundle.manifest
    for key in ("data", "train_window", "splits", "params", "best_iteration", "libraries", "seed",
                "code_revision", "created_at"):
        assert key in manifest, key
    assert manifest["data"]["sha256"] == "0" * 64
    assert manifest["train_window"] == {"start": str(windows.train_start), "end": str(windows.train_end)}
    assert set(manifest["libraries"]) == {"python", "xgboost", "scikit-learn", "numpy", "pandas"}
    assert manifest["params"]["tree_method"] == "hist" and manifest["params"]["nthread"] == 1
    assert manifest["n_trees"] == manifest["best_iteration"] + 1 == tiny_bundle.booster.num_boosted_rounds()


def test_slices_follow_each_other_in_time_inside_the_window(tiny_bundle: ModelBundle) -> None:
    splits = tiny_bundle.manifest["splits"]
    fit, es, cal = splits["fit"], splits["early_stopping"], splits["calibration"]
    assert fit["start"] >= "2026-01-01" and cal["end"] < "2026-01-29"
    assert fit["end"] <= es["start"] and es["end"] <= cal["start"]
    total = fit["n_rows"] + es["n_rows"] + cal["n_rows"]
    assert total == tiny_bundle.manifest["data"]["n_train_rows"]
    assert fit["n_rows"] / total == pytest.approx(0.70, abs=0.01)
    assert min(fit["n_frauds"], es["n_frauds"], cal["n_frauds"]) > 0


def test_training_rows_are_the_labelled_rows_of_the_window(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, windows: Any
) -> None:
    day = sim_frame["timestamp"].dt.date
    expected = ((day >= windows.train_start) & (day <= windows.train_end) & sim_frame["is_fraud"].notna()).sum()
    assert tiny_bundle.manifest["data"]["n_train_rows"] == expected


def test_model_ranks_fraud_far_above_chance(tiny_bundle: ModelBundle) -> None:
    cal = tiny_bundle.metrics["calibration"]
    assert set(EVALUATION_KEYS) <= set(cal)
    base_rate = cal["n_frauds"] / cal["n_transactions"]
    assert cal["auc_roc"] > 0.8
    assert cal["average_precision"] > 5 * base_rate


def test_threshold_hits_its_alert_rate_on_the_calibration_slice(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline, windows: Any
) -> None:
    fm = compute_features(sim_frame, pipeline)
    cal_rows = split_by_time(labelled_window(fm, windows.train_start, windows.train_end)).calibration
    alerts = tiny_bundle.threshold.decide(tiny_bundle.score(fm.X[cal_rows]))
    assert tiny_bundle.threshold.kind == "alert_rate" and tiny_bundle.threshold.target == 0.005
    # Ties at the threshold can add a few alerts; never fewer than the target.
    assert 0.005 <= alerts.mean() <= 0.005 + 3 / cal_rows.size
    assert alerts.mean() == pytest.approx(tiny_bundle.threshold.achieved["alert_rate"])


def test_calibrated_probabilities_match_the_fraud_rate(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline, windows: Any
) -> None:
    # On the slice it was fitted on, the mean calibrated probability is the fraud rate.
    fm = compute_features(sim_frame, pipeline)
    cal_rows = split_by_time(labelled_window(fm, windows.train_start, windows.train_end)).calibration
    y = fm.frame["is_fraud"].to_numpy()[cal_rows]
    assert tiny_bundle.score(fm.X[cal_rows]).mean() == pytest.approx(y.mean(), rel=0.35)
    assert tiny_bundle.calibrator.method == "platt" and tiny_bundle.calibrator.params["a"] > 0


def test_a_target_precision_policy_is_fitted_when_asked(
    sim_frame: pd.DataFrame, pipeline: FeaturePipeline, windows: Any
) -> None:
    settings = ModelSettings(seed=5, n_threads=1, max_rounds=60, early_stopping_rounds=10, target_precision=0.3)
    bundle = train(sim_frame, train_start=windows.train_start, train_end=windows.train_end, pipeline=pipeline, settings=settings,
                   data_hash="x", source="s")
    assert bundle.threshold.kind == "precision" and bundle.threshold.target == 0.3
    if bundle.threshold.achieved["reached"]:
        assert bundle.threshold.achieved["precision"] >= 0.3


def test_unusable_windows_fail_with_a_reason(
    sim_frame: pd.DataFrame, pipeline: FeaturePipeline, model_settings: ModelSettings, windows: Any
) -> None:
    def attempt(frame: pd.DataFrame, start: date, end: date) -> None:
        train(frame, train_start=start, train_end=end, pipeline=pipeline, settings=model_settings,
              data_hash="x", source="s")

    with pytest.raises(TrainingError, match="no labelled transactions between 2025-01-01 and 2025-01-31"):
        attempt(sim_frame, date(2025, 1, 1), date(2025, 1, 31))
    with pytest.raises(TrainingError, match="slice .* needs both classes"):
        attempt(sim_frame, date(2026, 1, 1), date(2026, 1, 1))
    with pytest.raises(TrainingError, match="no fraud labels"):
        attempt(sim_frame.drop(columns=["is_fraud"]), windows.train_start, windows.train_end)


def test_class_weighting_is_recorded_and_optional(tiny_bundle: ModelBundle, sim_frame: pd.DataFrame,
                                                  pipeline: FeaturePipeline, windows: Any) -> None:
    from detection.training import imbalance_weight, pipeline_settings, train_on_features

    assert tiny_bundle.manifest["imbalance"] == {"method": "scale_pos_weight", "rule": "none", "value": 1.0}
    y = np.array([1.0] * 2 + [0.0] * 198)
    assert (imbalance_weight(y, "none"), imbalance_weight(y, "sqrt"), imbalance_weight(y, "full")) == (1.0, 9.949874, 99.0)
    weighted = train_on_features(
        compute_features(sim_frame, pipeline), train_start=windows.train_start, train_end=windows.train_end,
        families=dict(pipeline.family_of), feature_settings=pipeline_settings(pipeline),
        settings=ModelSettings(seed=5, n_threads=1, max_rounds=40, early_stopping_rounds=10), data_hash="x", source="s",
        imbalance="sqrt",
    )
    assert weighted.manifest["params"]["scale_pos_weight"] > 1 and weighted.manifest["imbalance"]["rule"] == "sqrt"
    with pytest.raises(ValueError, match="unknown imbalance rule"):
        imbalance_weight(y, "double")
