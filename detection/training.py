"""Train a model bundle on a time window of labelled transactions.

Features come from ``pipeline.transform_many`` over *all* rows of the frame, so
history before the window counts and, by construction of the feature families,
nothing after a transaction does. The labelled rows of the window are split by
time, never at random (fraud drifts; a random split would leak the future):

    |-- fit (70%) --|-- early stopping (15%) --|-- calibration (15%) --|

* the booster learns on *fit* and stops when average precision on *early
  stopping* stops improving;
* the calibrator and the threshold policy are fitted on *calibration*, which the
  booster never saw, so the probabilities and the alert rate are honest.

Imbalance: AP-driven early stopping, base-rate calibration and rate-based
thresholds; class weighting is available but off by default (see :data:`IMBALANCE`).
"""

from __future__ import annotations

import math
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from detection.anomaly import AnomalyDetector
from detection.bundle import FORMAT, ModelBundle, version_id
from detection.calibration import CalibrationMethod, Calibrator, ThresholdPolicy
from detection.drift import BinnedReference, gain_importance
from detection.frames import FeatureMatrix, compute_features, utc_window_mask
from detection.metrics import evaluate
from features.base import MS_PER_DAY
from fraudlens.settings import FeatureSettings, ModelSettings

if TYPE_CHECKING:
    import xgboost as xgb

    from features.pipeline import FeaturePipeline

SPLIT_FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)
SLICE_NAMES: tuple[str, str, str] = ("fit", "early_stopping", "calibration")
#: Class weighting: ``scale_pos_weight`` = 1 ("none"), sqrt(n_legit / n_fraud) ("sqrt")
#: or n_legit / n_fraud ("full"). Imbalance is handled where it matters for fraud
#: ranking without reweighting: early stopping watches average precision (aucpr),
#: which rare frauds drive, instead of log-loss, which legit rows dominate; the
#: calibrator is fitted on the natural base rate; the threshold is set by alert rate
#: or precision, never at p=0.5. Reweighting was measured (bench/bench_detection.py,
#: ``imbalance_ablation``, and four simulated datasets): out-of-time average
#: precision none ~0.70 > sqrt ~0.68 > full ~0.66 on average, with "none" stopping at
#: fewer trees (faster scoring). So the default is "none"; pass ``imbalance=`` to
#: :func:`train_on_features` to reweight, and the manifest records the rule used.
IMBALANCE = "none"
#: Booster parameters besides objective, threads, seed and class weight.
BOOSTER_PARAMS: dict[str, Any] = {
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "lambda": 1.0,
    "max_bin": 256,
}
ProgressFn = Callable[[str], None]


class TrainingError(ValueError):
    """The data or window cannot produce a model; the message says what to change."""


@dataclass(frozen=True)
class Splits:
    """Row positions (into the feature matrix) of each time-ordered slice."""

    fit: np.ndarray
    early_stopping: np.ndarray
    calibration: np.ndarray

    def items(self) -> list[tuple[str, np.ndarray]]:
        return list(zip(SLICE_NAMES, (self.fit, self.early_stopping, self.calibration), strict=True))


def split_by_time(positions: np.ndarray, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> Splits:
    """Cut time-ordered row positions into fit / early-stopping / calibration slices."""
    n = positions.size
    cut1 = int(round(n * fractions[0]))
    cut2 = int(round(n * (fractions[0] + fractions[1])))
    return Splits(positions[:cut1], positions[cut1:cut2], positions[cut2:])


def booster_params(settings: ModelSettings, scale_pos_weight: float) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        **BOOSTER_PARAMS,
        "scale_pos_weight": scale_pos_weight,
        "nthread": settings.n_threads,
        "seed": settings.seed,
    }


def imbalance_weight(y: np.ndarray, rule: str | None = None) -> float:
    """``scale_pos_weight`` for labels ``y`` under ``rule`` ("sqrt", "full" or "none"; default :data:`IMBALANCE`)."""
    rule = rule or IMBALANCE
    n_pos = float(y.sum())
    ratio = (float(y.size) - n_pos) / n_pos
    weights = {"sqrt": math.sqrt(ratio), "full": ratio, "none": 1.0}
    if rule not in weights:
        raise ValueError(f"unknown imbalance rule {rule!r}; use one of {sorted(weights)}")
    # Rounded so that the value in the manifest (and the version id) is stable text.
    return round(weights[rule], 6)


def fit_booster(
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_es: np.ndarray,
    y_es: np.ndarray,
    *,
    params: dict[str, Any],
    settings: ModelSettings,
    feature_names: list[str] | None = None,
) -> tuple[xgb.Booster, int]:
    """Boost with early stopping on the time-ordered slice; return the booster cut at its best round."""
    import xgboost as xgb

    dfit = xgb.DMatrix(X_fit, label=y_fit, feature_names=feature_names, nthread=settings.n_threads)
    des = xgb.DMatrix(X_es, label=y_es, feature_names=feature_names, nthread=settings.n_threads)
    booster = xgb.train(
        params,
        dfit,
        num_boost_round=settings.max_rounds,
        evals=[(des, "early_stopping")],
        early_stopping_rounds=settings.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    # Keep only the trees up to the best round so every consumer (scoring, SHAP)
    # uses the same model without having to pass an iteration range.
    best_booster = booster[: best + 1]
    best_booster.set_attr(best_iteration=str(best), best_score=None, best_ntree_limit=None)
    return best_booster, best


def library_versions() -> dict[str, str]:
    import sklearn
    import xgboost

    return {
        "python": platform.python_version(),
        "xgboost": xgboost.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def code_revision() -> str:
    """``git rev-parse HEAD`` of the checkout this code runs from, or "unknown"."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else "unknown"


def _slice_summary(fm: FeatureMatrix, rows: np.ndarray) -> dict[str, Any]:
    ts = fm.frame["timestamp"].to_numpy()[rows]
    return {
        "start": pd.Timestamp(ts[0]).isoformat(),
        "end": pd.Timestamp(ts[-1]).isoformat(),
        "n_rows": int(rows.size),
        "n_frauds": int(fm.frame["is_fraud"].to_numpy()[rows].sum()),
    }


def labelled_window(fm: FeatureMatrix, start: Any, end: Any) -> np.ndarray:
    """Positions of labelled rows whose UTC date lies in [start, end]; a clear error when unusable."""
    if "is_fraud" not in fm.frame or fm.frame["is_fraud"].isna().all():
        raise TrainingError("the data has no fraud labels (is_fraud); map the label column with --columns MAP.yaml")
    in_window = utc_window_mask(fm.frame["timestamp"], start, end)
    positions = np.flatnonzero(in_window & fm.frame["is_fraud"].notna().to_numpy())
    if positions.size == 0:
        first, last = fm.frame["timestamp"].min(), fm.frame["timestamp"].max()
        raise TrainingError(
            f"no labelled transactions between {start} and {end}; the data covers {first:%Y-%m-%d} to {last:%Y-%m-%d}"
        )
    return positions


def check_splits(fm: FeatureMatrix, splits: Splits, start: Any, end: Any) -> None:
    y = fm.frame["is_fraud"].to_numpy()
    for name, rows in splits.items():
        n_fraud = int(y[rows].sum()) if rows.size else 0
        if rows.size == 0 or n_fraud == 0 or n_fraud == rows.size:
            raise TrainingError(
                f"the {name} slice of the training window {start}..{end} has {rows.size} labelled rows and "
                f"{n_fraud} frauds; every slice needs both classes - widen the window (more days or cards)"
            )


def train(
    frame: pd.DataFrame,
    *,
    train_start: Any,
    train_end: Any,
    pipeline: FeaturePipeline,
    settings: ModelSettings,
    data_hash: str,
    source: str,
    columns: dict[str, str] | None = None,
    calibration: CalibrationMethod = "platt",
    feature_settings: FeatureSettings | None = None,
    progress: ProgressFn | None = None,
) -> ModelBundle:
    """Train a bundle on the labelled rows of [train_start, train_end] (UTC dates, inclusive).

    ``feature_settings`` (stored in the bundle's feature spec) defaults to the ones
    the pipeline was built with.
    """
    say = progress or (lambda _msg: None)
    say(f"computing {len(pipeline.feature_names)} features for {len(frame):,} transactions")
    fm = compute_features(frame, pipeline)
    return train_on_features(
        fm, train_start=train_start, train_end=train_end, families=dict(pipeline.family_of),
        feature_settings=feature_settings or pipeline_settings(pipeline), settings=settings, data_hash=data_hash, source=source,
        columns=columns, calibration=calibration, progress=progress,
    )


def pipeline_settings(pipeline: Any) -> FeatureSettings:
    """The feature settings a pipeline was built with (stored in the bundle's feature spec)."""
    for attr in ("settings", "feature_settings"):
        found = getattr(pipeline, attr, None)
        if isinstance(found, FeatureSettings):
            return found
    # The pipeline keeps no settings object: read back the two values that shape it.
    delay_ms = getattr(pipeline, "label_delay_ms", None)
    novelty_ms = next((getattr(fam, "horizon_ms", None) for fam in getattr(pipeline, "families", [])
                       if getattr(fam, "name", "") == "novelty"), None)
    if delay_ms is None or novelty_ms is None:
        raise TrainingError("cannot tell which FeatureSettings the pipeline was built with; pass feature_settings=")
    return FeatureSettings(label_delay_days=delay_ms / MS_PER_DAY, novelty_horizon_days=novelty_ms / MS_PER_DAY)


def train_on_features(
    fm: FeatureMatrix,
    *,
    train_start: Any,
    train_end: Any,
    families: dict[str, str],
    feature_settings: FeatureSettings,
    settings: ModelSettings,
    data_hash: str,
    source: str,
    columns: dict[str, str] | None = None,
    calibration: CalibrationMethod = "platt",
    imbalance: str = IMBALANCE,
    progress: ProgressFn | None = None,
) -> ModelBundle:
    """:func:`train` on features computed once (shared with the baselines and the bench)."""
    say = progress or (lambda _msg: None)
    positions = labelled_window(fm, train_start, train_end)
    splits = split_by_time(positions)
    check_splits(fm, splits, train_start, train_end)
    y_all = fm.frame["is_fraud"].to_numpy(dtype=np.float64)
    X, y = fm.X, y_all
    params = booster_params(settings, imbalance_weight(y[splits.fit], imbalance))

    say(f"boosting on {splits.fit.size:,} rows, early stopping on {splits.early_stopping.size:,}")
    booster, best = fit_booster(
        X[splits.fit], y[splits.fit], X[splits.early_stopping], y[splits.early_stopping],
        params=params, settings=settings, feature_names=fm.feature_names,
    )
    say(f"calibrating ({calibration}) and fitting the threshold on {splits.calibration.size:,} rows")
    cal_margin = np.asarray(booster.inplace_predict(X[splits.calibration], predict_type="margin"), dtype=np.float64)
    calibrator = Calibrator.fit(cal_margin, y[splits.calibration], method=calibration)
    threshold = ThresholdPolicy.fit(
        calibrator.apply(cal_margin), y[splits.calibration],
        target_alert_rate=settings.target_alert_rate, target_precision=settings.target_precision,
    )
    say("fitting the anomaly detector")
    anomaly = AnomalyDetector.fit(X[splits.fit], seed=settings.seed)

    say("computing metrics of the fit, early-stopping and calibration slices")
    metrics: dict[str, Any] = {
        "note": "early_stopping chose the number of trees (optimistic); calibration is untouched by boosting",
        "threshold": threshold.threshold,
    }
    for name, rows in splits.items():
        margin = np.asarray(booster.inplace_predict(X[rows], predict_type="margin"), dtype=np.float64)
        scored = fm.frame.iloc[rows][["card_id", "timestamp", "amount", "is_fraud"]].assign(score=calibrator.apply(margin))
        metrics[name] = evaluate(scored, threshold.threshold, k=100)

    say("binning the training population (reference for drift checks)")
    train_margin = np.asarray(booster.inplace_predict(X[positions], predict_type="margin"), dtype=np.float64)
    reference = BinnedReference.fit(
        calibrator.apply(train_margin), X[positions], fm.feature_names, gain_importance(booster, fm.feature_names),
        window={"start": str(train_start), "end": str(train_end)},
    )

    identity = {
        "format": FORMAT,
        "data_sha256": data_hash,
        "columns": columns or {},
        "train_window": [str(train_start), str(train_end)],
        "params": params,
        "max_rounds": settings.max_rounds,
        "early_stopping_rounds": settings.early_stopping_rounds,
        "split_fractions": list(SPLIT_FRACTIONS),
        "calibration": calibration,
        "threshold_targets": {"alert_rate": settings.target_alert_rate, "precision": settings.target_precision},
        "anomaly": anomaly.params,
        "seed": settings.seed,
        "feature_names": fm.feature_names,
        "feature_settings": feature_settings.model_dump(mode="json"),
    }
    version = version_id(identity)
    manifest = {
        "format": FORMAT,
        "version": version,
        "data": {"sha256": data_hash, "source": source, "columns": columns or {}, "n_rows": len(fm.frame),
                 "n_train_rows": int(positions.size), "n_train_frauds": int(y[positions].sum())},
        "train_window": {"start": str(train_start), "end": str(train_end)},
        "splits": {name: _slice_summary(fm, rows) for name, rows in splits.items()},
        "split_fractions": list(SPLIT_FRACTIONS),
        "params": params,
        "max_rounds": settings.max_rounds,
        "early_stopping_rounds": settings.early_stopping_rounds,
        "imbalance": {"method": "scale_pos_weight", "rule": imbalance, "value": params["scale_pos_weight"]},
        "calibration": calibration,
        "anomaly": anomaly.params,
        "best_iteration": best,
        "n_trees": best + 1,
        "seed": settings.seed,
        "libraries": library_versions(),
        "code_revision": code_revision(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return ModelBundle(
        version=version, feature_names=fm.feature_names, families=families, feature_settings=feature_settings,
        booster=booster, calibrator=calibrator, threshold=threshold, anomaly=anomaly,
        manifest=manifest, metrics=metrics, reference=reference,
    )
