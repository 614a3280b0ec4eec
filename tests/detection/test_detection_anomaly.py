"""The isolation-forest anomaly detector and its pickle-free export."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from detection.anomaly import AnomalyDetector


def _features(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 2] = np.nan  # an optional input absent from the whole file
    X[rng.random(n) < 0.2, 4] = np.nan  # missing now and then
    return X


def test_exported_trees_score_exactly_like_scikit_learn() -> None:
    X = _features()
    det = AnomalyDetector.fit(X, seed=7)
    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=7, n_jobs=1)
    imputed = np.where(np.isnan(X), det.medians, X)
    forest.fit(imputed)
    np.testing.assert_allclose(det.raw_score(X), -forest.score_samples(imputed), rtol=0, atol=1e-12)


def test_scores_are_normalised_and_outliers_score_high(tmp_path) -> None:
    X = _features()
    det = AnomalyDetector.fit(X, seed=7)
    scores = det.score(X)
    assert scores.min() >= 0 and scores.max() <= 1
    assert abs(np.median(scores) - 0.5) < 0.02  # the training rows are spread by their quantiles
    outlier = np.array([[9.0, -9.0, np.nan, 9.0, 9.0, -9.0]])
    assert det.score(outlier)[0] > 0.99
    det.save(tmp_path)
    again = AnomalyDetector.load(tmp_path)
    np.testing.assert_array_equal(again.score(X), scores)
