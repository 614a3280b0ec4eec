"""Shared frame plumbing: time order, feature matrices and UTC date windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class FeatureMatrix:
    """A canonical frame sorted by time (index 0..n-1) and its features as a float64 matrix."""

    frame: pd.DataFrame
    X: np.ndarray
    feature_names: list[str]


def parse_day(value: Any, *, name: str = "date") -> date:
    """A ``date`` from a ``date``/``datetime``/``YYYY-MM-DD`` string; ValueError naming the argument otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None


def utc_window_mask(timestamps: pd.Series, start: Any, end: Any) -> np.ndarray:
    """Rows whose UTC calendar date lies in [start, end] (both inclusive)."""
    first = pd.Timestamp(parse_day(start, name="start")).tz_localize("UTC")
    after = pd.Timestamp(parse_day(end, name="end")).tz_localize("UTC") + pd.Timedelta(days=1)
    if after <= first:
        raise ValueError(f"empty window: end {end} is before start {start}")
    ts = timestamps
    return ((ts >= first) & (ts < after)).to_numpy()


def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by timestamp, keeping file order among equal times (the order events were processed)."""
    if frame["timestamp"].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def compute_features(frame: pd.DataFrame, pipeline: Any) -> FeatureMatrix:
    """Features for every row of ``frame`` from the history before it, as a float64 matrix."""
    ordered = time_ordered(frame)
    names = list(pipeline.feature_names)
    features = pipeline.transform_many(ordered)
    absent = [n for n in names if n not in features.columns]
    if absent:
        raise ValueError(f"feature pipeline did not produce {absent}")
    X = features.loc[ordered.index, names].to_numpy(dtype=np.float64)
    return FeatureMatrix(ordered, X, names)
