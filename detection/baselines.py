"""Baselines trained in the same run as the engineered model, judged out of time.

* ``logistic_regression``: the same engineered features, median-imputed and
  standardised, ``class_weight="balanced"``. Says how much the booster adds over a
  linear model on the same information.
* ``raw_xgboost``: the same booster settings on raw fields only (amount, hour of
  day, day of week, channel, MCC, latitude, longitude; no card history). Says how
  much the engineered history features add.

All three use the same training window and the same time-ordered slices: fit on
*fit*, early stopping (boosters) on *early stopping*, threshold on *calibration*;
all are evaluated on a later, disjoint test window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from detection.bundle import ModelBundle
from detection.calibration import ThresholdPolicy
from detection.frames import FeatureMatrix, compute_features, parse_day, utc_window_mask
from detection.metrics import evaluate
from detection.training import (
    ProgressFn,
    booster_params,
    fit_booster,
    imbalance_weight,
    labelled_window,
    pipeline_settings,
    split_by_time,
    train_on_features,
)
from fraudlens.settings import FeatureSettings, ModelSettings

if TYPE_CHECKING:
    from features.pipeline import FeaturePipeline

#: Raw-field baseline inputs taken from the pipeline (same encodings as the model) ...
RAW_FEATURES: tuple[str, ...] = ("amount", "hour_of_day", "day_of_week", "channel_code", "mcc_code")
#: ... and straight from the canonical frame.
RAW_FIELDS: tuple[str, ...] = ("latitude", "longitude")
MODEL_NAMES: tuple[str, ...] = ("engineered_xgboost", "logistic_regression", "raw_xgboost")


@dataclass
class Comparison:
    report: dict[str, Any]
    bundle: ModelBundle


def raw_matrix(fm: FeatureMatrix) -> tuple[np.ndarray, list[str]]:
    """The raw-field baseline's inputs: no history, only what one transaction carries."""
    names = [n for n in RAW_FEATURES if n in fm.feature_names]
    cols = [fm.X[:, fm.feature_names.index(n)] for n in names]
    for field in RAW_FIELDS:
        values = fm.frame[field] if field in fm.frame else pd.Series(np.nan, index=fm.frame.index)
        cols.append(values.to_numpy(dtype=np.float64))
        names.append(field)
    return np.column_stack(cols), names


def fit_logistic(X_fit: np.ndarray, y_fit: np.ndarray, seed: int) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed),
    )
    finite = np.where(np.isfinite(X_fit), X_fit, np.nan)
    return model.fit(finite, y_fit)


def run_comparison(
    frame: pd.DataFrame,
    *,
    train_start: Any,
    train_end: Any,
    test_start: Any,
    test_end: Any,
    pipeline: FeaturePipeline,
    settings: ModelSettings,
    data_hash: str = "",
    source: str = "",
    feature_settings: FeatureSettings | None = None,
    k: int = 100,
    progress: ProgressFn | None = None,
) -> Comparison:
    """Train the engineered model and both baselines, evaluate all three on the test window."""
    if parse_day(test_start, name="test_start") <= parse_day(train_end, name="train_end"):
        raise ValueError(f"the test window must start after the training window ends ({train_end}); "
                         f"got test_start={test_start} - an overlapping test is not out-of-time")
    say = progress or (lambda _msg: None)
    last_day = pd.Timestamp(parse_day(test_end, name="test_end")).tz_localize("UTC") + pd.Timedelta(days=1)
    say(f"computing features for {len(frame):,} transactions")
    fm = compute_features(frame.loc[frame["timestamp"] < last_day], pipeline)
    bundle = train_on_features(
        fm, train_start=train_start, train_end=train_end, families=dict(pipeline.family_of),
        feature_settings=feature_settings or pipeline_settings(pipeline), settings=settings,
        data_hash=data_hash, source=source, progress=progress,
    )
    splits = split_by_time(labelled_window(fm, train_start, train_end))
    y = fm.frame["is_fraud"].to_numpy(dtype=np.float64)
    test = np.flatnonzero(utc_window_mask(fm.frame["timestamp"], test_start, test_end) & ~np.isnan(y))
    if test.size == 0:
        raise ValueError(f"no labelled transactions between {test_start} and {test_end}")

    say("training the logistic-regression baseline")
    logistic = fit_logistic(fm.X[splits.fit], y[splits.fit], settings.seed)

    def logistic_score(rows: np.ndarray) -> np.ndarray:
        X = fm.X[rows]
        return logistic.predict_proba(np.where(np.isfinite(X), X, np.nan))[:, 1]

    say("training the raw-field XGBoost baseline")
    X_raw, raw_names = raw_matrix(fm)
    raw_booster, raw_best = fit_booster(
        X_raw[splits.fit], y[splits.fit], X_raw[splits.early_stopping], y[splits.early_stopping],
        params=booster_params(settings, imbalance_weight(y[splits.fit])), settings=settings, feature_names=raw_names,
    )

    def raw_score(rows: np.ndarray) -> np.ndarray:
        return np.asarray(raw_booster.inplace_predict(X_raw[rows]), dtype=np.float64)

    def bundle_score(rows: np.ndarray) -> np.ndarray:
        return bundle.score(fm.X[rows])

    context = fm.frame.iloc[test][["card_id", "timestamp", "amount", "is_fraud"]]
    models: dict[str, Any] = {}
    scorers = {"engineered_xgboost": bundle_score, "logistic_regression": logistic_score, "raw_xgboost": raw_score}
    for name, scorer in scorers.items():
        if name == "engineered_xgboost":
            threshold = bundle.threshold
        else:
            threshold = ThresholdPolicy.fit(
                scorer(splits.calibration), y[splits.calibration],
                target_alert_rate=settings.target_alert_rate, target_precision=settings.target_precision,
            )
        models[name] = evaluate(context.assign(score=scorer(test)), threshold.threshold, k=k)
    models["engineered_xgboost"]["n_features"] = len(fm.feature_names)
    models["engineered_xgboost"]["n_trees"] = bundle.manifest["n_trees"]
    models["logistic_regression"]["n_features"] = len(fm.feature_names)
    models["raw_xgboost"]["n_features"] = len(raw_names)
    models["raw_xgboost"]["n_trees"] = raw_best + 1
    models["raw_xgboost"]["features"] = raw_names

    ap = {name: models[name]["average_precision"] for name in MODEL_NAMES}
    lift = {
        f"vs_{name}": (ap["engineered_xgboost"] / ap[name]) if ap[name] and ap["engineered_xgboost"] else None
        for name in MODEL_NAMES[1:]
    }
    beats = all(ap[name] is not None and ap["engineered_xgboost"] is not None and ap["engineered_xgboost"] > ap[name]
                for name in MODEL_NAMES[1:])
    report = {
        "version": bundle.version,
        "train_window": {"start": str(train_start), "end": str(train_end)},
        "test_window": {"start": str(test_start), "end": str(test_end)},
        "n_test_transactions": int(test.size),
        "n_test_frauds": int(y[test].sum()),
        "k": k,
        "models": models,
        "average_precision_ratio": lift,
        "engineered_beats_baselines": beats,
    }
    return Comparison(report=report, bundle=bundle)
