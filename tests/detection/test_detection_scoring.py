"""Batch scoring of a window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detection import ModelBundle, compute_features, score_window
from features.pipeline import FeaturePipeline


def test_scores_cover_exactly_the_window(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline, windows: Any
) -> None:
    scores = score_window(sim_frame, tiny_bundle, pipeline, windows.test_start, windows.test_end)
    assert set(scores["transaction_id"]) == windows.test_ids(sim_frame)
    assert len(scores) == len(windows.test_ids(sim_frame))
    assert scores["score"].between(0, 1).all() and scores["anomaly_score"].between(0, 1).all()
    assert (scores["alert"] == (scores["score"] >= tiny_bundle.threshold.threshold)).all()
    assert scores["timestamp"].is_monotonic_increasing


def test_scores_use_earlier_history_and_ignore_the_future(
    tiny_bundle: ModelBundle, sim_frame: pd.DataFrame, pipeline: FeaturePipeline, windows: Any
) -> None:
    scores = score_window(sim_frame, tiny_bundle, pipeline, windows.test_start, windows.test_end).set_index("transaction_id")
    # Same numbers as features computed over the whole file, future included ...
    fm = compute_features(sim_frame, pipeline)
    full = pd.Series(tiny_bundle.score(fm.X), index=fm.frame["transaction_id"])
    np.testing.assert_allclose(scores["score"], full.loc[scores.index], rtol=1e-12)
    # ... and different from scoring the window without its history (velocity, novelty need it).
    day = sim_frame["timestamp"].dt.date
    alone = score_window(sim_frame.loc[day >= windows.test_start], tiny_bundle, pipeline, windows.test_start, windows.test_end)
    assert not np.allclose(alone.set_index("transaction_id").loc[scores.index, "score"], scores["score"])
