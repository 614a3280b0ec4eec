"""Day-block bootstrap intervals (detection.uncertainty) against scikit-learn and detection.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from detection import metrics
from detection.uncertainty import DayBootstrap, bootstrap_interval, paired_difference


def _data(seed: int = 3, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 30, n)
    cards = rng.integers(0, 400, n).astype(str)
    y = (rng.random(n) < 0.03).astype(float)
    # informative but imperfect scores, rounded so that ties occur
    s = np.round(np.clip(0.3 * y + rng.normal(0.3, 0.15, n), 0, 1), 2)
    return y, s, days, cards


def test_full_sample_values_equal_the_plain_metrics() -> None:
    y, s, days, cards = _data()
    boot = DayBootstrap(y, days, cards, k=20)
    got = boot.intervals(s, n_resamples=20)
    assert got["average_precision"].value == pytest.approx(metrics.average_precision(y, s), abs=1e-12)
    assert got["auc_roc"].value == pytest.approx(metrics.auc_roc(y, s), abs=1e-12)
    assert got["recall_at_1pct_fpr"].value == pytest.approx(metrics.recall_at_fpr(y, s, 0.01), abs=1e-12)
    assert got["card_precision_at_k"].value == pytest.approx(metrics.card_precision_at_k(cards, days, y, s, k=20))


def test_intervals_contain_the_estimate_and_narrow_with_more_data() -> None:
    y, s, days, cards = _data(n=3000)
    small = DayBootstrap(y, days, cards, k=20).intervals(s, n_resamples=300, seed=1)["average_precision"]
    y2, s2, days2, cards2 = _data(n=60_000)
    large = DayBootstrap(y2, days2, cards2, k=20).intervals(s2, n_resamples=300, seed=1)["average_precision"]
    for iv in (small, large):
        assert iv.low <= iv.value <= iv.high
    assert (large.high - large.low) < (small.high - small.low)


def test_intervals_are_reproducible_with_a_seed() -> None:
    y, s, days, cards = _data()
    boot = DayBootstrap(y, days, cards)
    assert boot.intervals(s, n_resamples=50, seed=9) == boot.intervals(s, n_resamples=50, seed=9)


def test_paired_difference_separates_a_better_model_from_a_worse_one() -> None:
    y, s, days, cards = _data(n=20_000)
    rng = np.random.default_rng(0)
    noise = rng.random(y.size)  # a model that knows nothing
    diff = paired_difference(DayBootstrap(y, days, cards, k=20), s, noise, n_resamples=200)
    ap = diff["average_precision"]
    assert ap.value < 0 and ap.high < 0  # the noise model is worse, beyond the interval
    same = paired_difference(DayBootstrap(y, days, cards, k=20), s, s, n_resamples=50)["average_precision"]
    assert same.value == 0 and same.low == 0 and same.high == 0


def test_row_bootstrap_of_a_mean_agrees_with_the_normal_interval() -> None:
    values = np.random.default_rng(2).normal(loc=5.0, size=2000)
    iv = bootstrap_interval(np.mean, values, n_resamples=1000)
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)  # ~0.044
    assert iv.value == pytest.approx(values.mean())
    assert iv.low == pytest.approx(values.mean() - half_width, abs=0.01)
    assert iv.high == pytest.approx(values.mean() + half_width, abs=0.01)
    assert iv.to_json()["ci_low"] == pytest.approx(iv.low)
