"""The evaluated window: features computed once, the window's rows scored by the bundle.

Every section of the report reads the same :class:`EvaluatedWindow`, so the numbers
agree with each other and with :func:`detection.scoring.score_window` (same feature
history, same scores; a test checks it). Unlike ``score_window`` it keeps the feature
matrix (PSI, SHAP, challengers) and every column of the data (segments, profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from detection.bundle import ModelBundle
from detection.frames import FeatureMatrix, parse_day
from detection.scoring import window_features


class ValidationError(ValueError):
    """The model, data or window cannot be validated as asked; the message says what to change."""


@dataclass
class EvaluatedWindow:
    """Features of all history up to ``end`` and the scores of the rows in [start, end]."""

    fm: FeatureMatrix
    rows: np.ndarray
    scored: pd.DataFrame
    start: date
    end: date

    @property
    def X(self) -> np.ndarray:
        """Feature rows of the window, model order."""
        return self.fm.X[self.rows]

    @property
    def labelled(self) -> np.ndarray:
        return self.scored["is_fraud"].notna().to_numpy()

    @property
    def y(self) -> np.ndarray:
        """Labels of the labelled window rows (0/1 floats)."""
        return self.scored.loc[self.labelled, "is_fraud"].to_numpy(dtype=np.float64)

    def labelled_column(self, name: str) -> np.ndarray:
        return self.scored.loc[self.labelled, name].to_numpy()

    @property
    def days(self) -> np.ndarray:
        """UTC day of each labelled row (the bootstrap's resampling unit)."""
        return self.scored.loc[self.labelled, "timestamp"].dt.floor("D").to_numpy()

    @property
    def n_days(self) -> int:
        return int(self.scored["timestamp"].dt.floor("D").nunique())


def evaluate_window(frame: pd.DataFrame, bundle: ModelBundle, start: Any, end: Any, *,
                    pipeline: Any | None = None, require_out_of_time: bool = True) -> EvaluatedWindow:
    """Score the rows of ``frame`` whose UTC date is in [start, end] with features from all earlier rows.

    Raises :class:`ValidationError` when the window holds no rows or no labels, or
    (``require_out_of_time``) when it overlaps the bundle's training window.
    """
    first, last = parse_day(start, name="start"), parse_day(end, name="end")
    if last < first:
        raise ValidationError(f"--end {last} is before --start {first}")
    if frame.empty:
        raise ValidationError("the data file has no transactions")
    train_end = bundle.manifest.get("train_window", {}).get("end")
    if require_out_of_time and train_end and first <= parse_day(train_end, name="train_window.end"):
        raise ValidationError(
            f"the window {first}..{last} overlaps the training window of {bundle.version} (ends {train_end}); "
            "an out-of-time validation needs --start after the training window"
        )
    data_first, data_last = frame["timestamp"].min(), frame["timestamp"].max()
    if pd.Timestamp(first).tz_localize("UTC") > data_last or pd.Timestamp(last).tz_localize("UTC") + pd.Timedelta(days=1) <= data_first:
        raise ValidationError(f"the window {first}..{last} is outside the data, which covers "
                              f"{data_first:%Y-%m-%d} to {data_last:%Y-%m-%d}; pick --start/--end inside it")
    if "is_fraud" not in frame or frame["is_fraud"].isna().all():
        raise ValidationError("the data has no fraud labels (is_fraud); validation needs labels - map the label "
                              "column with --columns MAP.yaml")
    if pipeline is None:
        from features.pipeline import FeaturePipeline

        pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    bundle.check_features(list(pipeline.feature_names))
    fm, rows = window_features(frame, pipeline, first, last)
    if rows.size == 0:
        raise ValidationError(f"no transactions between {first} and {last}")
    X = fm.X[rows]
    margin = bundle.margin(X)
    score = bundle.calibrator.apply(margin)
    scored = fm.frame.iloc[rows].reset_index(drop=True)
    scored = scored.assign(score=score, alert=bundle.threshold.decide(score), anomaly_score=bundle.anomaly_score(X),
                           margin=margin)
    labels = scored["is_fraud"]
    if labels.notna().sum() == 0:
        raise ValidationError(f"no labelled transactions between {first} and {last}; validation needs labels")
    if labels.sum() == 0:
        raise ValidationError(f"no frauds between {first} and {last}; performance cannot be measured - widen the window")
    return EvaluatedWindow(fm=fm, rows=rows, scored=scored, start=first, end=last)
