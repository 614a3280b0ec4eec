"""Challengers scored in the same run, on the same rows, with the same metrics.

* ``logistic_regression``: the engineered features, median-imputed and standardised,
  fitted on the bundle's own *fit* slice (the pipeline of :mod:`detection.baselines`),
  its threshold fitted on the *calibration* slice with the bundle's policy;
* ``anomaly_score``: the bundle's unsupervised isolation-forest score alone.

Both need the training window in the data file (the logistic regression is trained
on it; the anomaly score's threshold is set on its calibration slice). Without it the
ranking metrics of the anomaly score are still reported. Each challenger also gets the
paired day-bootstrap interval of ``model - challenger``: same days drawn for both,
which is what says whether the model is really better.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from detection.baselines import fit_logistic
from detection.bundle import ModelBundle
from detection.calibration import ThresholdPolicy
from detection.metrics import evaluate
from detection.training import TrainingError, check_splits, labelled_window, split_by_time
from detection.uncertainty import (
    DEFAULT_RESAMPLES,
    INTERVAL_METRICS,
    DayBootstrap,
    paired_difference,
)
from detection.validation.performance import AT_THRESHOLD_KEYS
from detection.validation.window import EvaluatedWindow

CHALLENGERS: tuple[str, ...] = ("logistic_regression", "anomaly_score")


def _policy(bundle: ModelBundle, scores: np.ndarray, y: np.ndarray) -> ThresholdPolicy:
    kind, target = bundle.threshold.kind, bundle.threshold.target
    return ThresholdPolicy.fit(scores, y, target_alert_rate=target if kind == "alert_rate" else None,
                               target_precision=target if kind == "precision" else None)


def challenger_scores(window: EvaluatedWindow, bundle: ModelBundle) -> dict[str, dict[str, Any]]:
    """Per challenger: ``scores`` of every window row, ``threshold`` (or None) and a ``note``."""
    fm = window.fm
    train = bundle.manifest.get("train_window", {})
    splits = None
    try:
        splits = split_by_time(labelled_window(fm, train.get("start"), train.get("end")))
        check_splits(fm, splits, train.get("start"), train.get("end"))
    except (TrainingError, ValueError) as exc:
        reason = f"the data does not hold the training window {train.get('start')}..{train.get('end')} ({exc})"
        splits = None
    y = fm.frame["is_fraud"].to_numpy(dtype=np.float64)
    anomaly: dict[str, Any] = {"scores": window.scored["anomaly_score"].to_numpy(dtype=np.float64), "threshold": None,
                               "note": "isolation-forest score of the bundle, no labels used"}
    if splits is None:
        return {"logistic_regression": {"scores": None, "threshold": None, "note": f"not trained: {reason}"},
                "anomaly_score": {**anomaly, "note": anomaly["note"] + "; no threshold: " + reason}}
    seed = int(bundle.manifest.get("seed", 0))
    model = fit_logistic(fm.X[splits.fit], y[splits.fit], seed)

    def logistic(X: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(np.where(np.isfinite(X), X, np.nan))[:, 1], dtype=np.float64)

    cal = splits.calibration
    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {"logistic_regression": logistic,
                                                              "anomaly_score": bundle.anomaly_score}
    out = {}
    for name, scorer in scorers.items():
        threshold = _policy(bundle, scorer(fm.X[cal]), y[cal]).threshold
        out[name] = {"scores": scorer(window.X), "threshold": float(threshold)}
    out["logistic_regression"]["note"] = (f"fitted on the bundle's fit slice ({splits.fit.size:,} rows), threshold "
                                          f"on its calibration slice ({cal.size:,} rows)")
    out["anomaly_score"]["note"] = anomaly["note"] + "; threshold on the calibration slice"
    return out


def challenger_section(window: EvaluatedWindow, bundle: ModelBundle, boot: DayBootstrap,
                       challengers: dict[str, dict[str, Any]], *, k: int = 100,
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Intervals of each challenger and of ``model - challenger`` (paired), plus threshold figures."""
    labelled = window.labelled
    model_scores = window.labelled_column("score").astype(float)
    models: dict[str, Any] = {}
    differences: dict[str, Any] = {}
    for name, found in challengers.items():
        if found["scores"] is None:
            models[name] = {"available": False, "note": found["note"]}
            continue
        scores = np.asarray(found["scores"], dtype=np.float64)
        intervals = boot.intervals(scores[labelled], n_resamples=n_resamples, seed=seed)
        entry: dict[str, Any] = {"available": True, "note": found["note"],
                                 **{m: intervals[m].to_json() for m in INTERVAL_METRICS}}
        threshold = found["threshold"]
        if threshold is not None:
            point = evaluate(window.scored.assign(score=scores), threshold, k=k)
            entry["at_threshold"] = {"threshold": threshold, **{key: point[key] for key in AT_THRESHOLD_KEYS}}
        models[name] = entry
        diff = paired_difference(boot, scores[labelled], model_scores, n_resamples=n_resamples, seed=seed)
        differences[name] = {m: diff[m].to_json() for m in INTERVAL_METRICS}
    beats = {name: (d["average_precision"]["ci_low"] is not None and d["average_precision"]["ci_low"] > 0)
             for name, d in differences.items()}
    return {
        "models": models,
        "model_minus_challenger": differences,
        "model_beats_on_average_precision": beats,
        "rule": "the model beats a challenger when the 95% paired day-bootstrap interval of "
                "AP(model) - AP(challenger) lies above 0",
    }
