"""Batch scoring of a time window with a model bundle.

Features of each transaction come from *all* earlier history in the frame (rows
before the window included), exactly as the online engine would have seen it;
rows after the window are dropped before feature computation because nothing may
look at them anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detection.bundle import ModelBundle
from detection.frames import FeatureMatrix, compute_features, parse_day, utc_window_mask

SCORE_COLUMNS: tuple[str, ...] = ("transaction_id", "score", "alert", "anomaly_score", "margin")
_CONTEXT_COLUMNS: tuple[str, ...] = ("timestamp", "card_id", "merchant_id", "amount", "is_fraud")


def window_features(frame: pd.DataFrame, pipeline: Any, start: Any, end: Any) -> tuple[FeatureMatrix, np.ndarray]:
    """Features of every transaction up to the end of [start, end] (all earlier history, nothing
    later) and the positions of the window's rows among them."""
    last_day = pd.Timestamp(parse_day(end, name="end")).tz_localize("UTC") + pd.Timedelta(days=1)
    fm = compute_features(frame.loc[frame["timestamp"] < last_day], pipeline)
    return fm, np.flatnonzero(utc_window_mask(fm.frame["timestamp"], start, end))


def score_window(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    pipeline: Any | None,
    start: Any,
    end: Any,
    *,
    n_threads: int | None = None,
) -> pd.DataFrame:
    """Score every transaction whose UTC date is in [start, end] (inclusive).

    Returns one row per window transaction in time order with ``transaction_id``,
    ``score`` (calibrated), ``alert`` (threshold policy), ``anomaly_score``,
    ``margin`` and the context columns metrics need (``timestamp``, ``card_id``,
    ``merchant_id``, ``amount``, ``is_fraud`` when present).
    ``pipeline`` defaults to the one described by the bundle's feature settings.
    """
    if pipeline is None:
        from features.pipeline import FeaturePipeline

        pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    bundle.check_features(list(pipeline.feature_names))
    fm, rows = window_features(frame, pipeline, start, end)
    X = fm.X[rows]
    if n_threads is not None:
        bundle.set_threads(n_threads)
    try:
        margin = bundle.margin(X) if rows.size else np.zeros(0)
    finally:
        if n_threads is not None:
            bundle.set_threads(1)
    score = bundle.calibrator.apply(margin)
    out = fm.frame.iloc[rows][[c for c in ("transaction_id", *_CONTEXT_COLUMNS) if c in fm.frame]].reset_index(drop=True)
    out.insert(1, "score", score)
    out.insert(2, "alert", bundle.threshold.decide(score))
    out.insert(3, "anomaly_score", bundle.anomaly_score(X) if rows.size else np.zeros(0))
    out.insert(4, "margin", margin)
    return out
