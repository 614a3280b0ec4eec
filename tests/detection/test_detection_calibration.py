"""Calibration and threshold policy."""

from __future__ import annotations

import numpy as np
import pytest

from detection.calibration import CalibrationError, CalibrationMethod, Calibrator, ThresholdPolicy


def _synthetic(n: int = 20_000, a: float = 2.0, b: float = -3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    margin = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a * margin + b)))).astype(float)
    return margin, y


def test_platt_recovers_the_generating_map() -> None:
    margin, y = _synthetic()
    cal = Calibrator.fit(margin, y, method="platt")
    assert cal.params["a"] == pytest.approx(2.0, abs=0.1)
    assert cal.params["b"] == pytest.approx(-3.0, abs=0.1)
    # Strictly increasing: the ranking of the model is untouched.
    p = cal.apply(np.sort(margin))
    assert np.all(np.diff(p) >= 0)


def test_calibrators_round_trip_through_json() -> None:
    margin, y = _synthetic(n=2000)
    methods: tuple[CalibrationMethod, ...] = ("platt", "isotonic")
    for method in methods:
        cal = Calibrator.fit(margin, y, method=method)
        again = Calibrator.from_json(cal.to_json())
        np.testing.assert_array_equal(cal.apply(margin), again.apply(margin))
        assert again.apply(margin).min() >= 0 and again.apply(margin).max() <= 1


def test_calibration_needs_both_classes() -> None:
    with pytest.raises(CalibrationError, match="both frauds and non-frauds"):
        Calibrator.fit(np.zeros(10), np.zeros(10))


def test_alert_rate_policy_hits_its_target() -> None:
    scores = np.random.default_rng(1).random(10_000)
    policy = ThresholdPolicy.fit(scores, target_alert_rate=0.005)
    assert policy.decide(scores).mean() == pytest.approx(0.005, abs=1 / scores.size)
    assert policy.achieved["alert_rate"] == pytest.approx(0.005, abs=1 / scores.size)


def test_precision_policy_takes_the_lowest_threshold_reaching_the_target() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    y = np.array([1, 1, 0, 1, 0, 0])
    policy = ThresholdPolicy.fit(scores, y, target_precision=0.75)
    # Precision by cut: 1, 1, 2/3, 3/4, 3/5, 1/2 -> deepest cut at >= 0.75 is 0.6.
    assert policy.threshold == 0.6 and policy.achieved["reached"]
    assert policy.decide(scores).tolist() == [True, True, True, True, False, False]
    unreachable = ThresholdPolicy.fit(scores, np.array([0, 1, 0, 0, 0, 0]), target_precision=0.9)
    assert not unreachable.achieved["reached"] and unreachable.threshold == 0.8


def test_policy_round_trips_through_json() -> None:
    policy = ThresholdPolicy.fit(np.linspace(0, 1, 1000), target_alert_rate=0.01)
    again = ThresholdPolicy.from_json(policy.to_json())
    assert again == policy
