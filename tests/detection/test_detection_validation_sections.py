"""Report sections one by one: calibration by hand, PSI flags on a shifted window, segment flags
and clear errors for unusable input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from detection import ModelBundle
from detection.validation import (
    brier_score,
    calibration_section,
    evaluate_window,
    expected_calibration_error,
    reliability,
    segment_section,
    stability_section,
)
from detection.validation.segments import mcc_group
from detection.validation.window import ValidationError


def test_ece_and_brier_on_a_hand_made_example() -> None:
    # Two uniform bins of [0, 1]: bin 1 holds p = 0.1, 0.2, 0.3 with outcomes 0, 0, 1
    # (mean p 0.2, rate 1/3); bin 2 holds p = 0.6, 0.9 with outcomes 1, 1 (mean 0.75, rate 1).
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.6, 0.9]
    expected_ece = 3 / 5 * abs(0.2 - 1 / 3) + 2 / 5 * abs(0.75 - 1.0)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected_ece, abs=1e-12)
    expected_brier = (0.01 + 0.04 + 0.49 + 0.16 + 0.01) / 5
    assert brier_score(y, p) == pytest.approx(expected_brier, abs=1e-12)
    bins = reliability(y, p, n_bins=2)
    assert [b["rows"] for b in bins] == [3, 2] and [b["frauds"] for b in bins] == [1, 2]
    section = calibration_section(y, p, ece_limit=0.2, n_bins=2)
    assert section["passed"] is True and section["ece"] == pytest.approx(expected_ece)
    assert calibration_section(y, p, ece_limit=0.15, n_bins=2)["passed"] is False
    # Perfectly calibrated: every bin's mean prediction equals its observed rate.
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.0


def test_psi_flags_a_deliberately_shifted_window(sim_frame: pd.DataFrame, tiny_bundle: ModelBundle,
                                                 windows: Any) -> None:
    calm = evaluate_window(sim_frame, tiny_bundle, windows.test_start, windows.test_end)
    calm_section = stability_section(tiny_bundle.reference, calm.scored["score"], calm.X, tiny_bundle.feature_names)
    assert calm_section["features"]["amount"]["flag"] == "stable"
    # Every amount of the window is multiplied by 8: amount features must shift, and "amount"
    # is among the top features, so the stability check fails.
    shifted = sim_frame.copy()
    in_window = shifted["timestamp"].dt.date >= windows.test_start
    shifted.loc[in_window, "amount"] *= 8
    window = evaluate_window(shifted, tiny_bundle, windows.test_start, windows.test_end)
    section = stability_section(tiny_bundle.reference, window.scored["score"], window.X, tiny_bundle.feature_names)
    assert section["features"]["amount"]["flag"] == "major shift" and section["features"]["amount"]["psi"] > 0.25
    assert "amount" in section["shifted_features"]
    assert ("amount" in section["top_features"]) <= (section["passed"] is False)
    assert section["features"]["hour_of_day"]["flag"] == "stable"  # untouched features stay put


def _segment_frame(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    parts, labels = [], []
    for name, n, frauds, good in (("A", 3000, 40, True), ("B", 3000, 40, True), ("C", 3000, 40, False),
                                  ("D", 300, 3, False)):
        y = np.zeros(n)
        y[rng.choice(n, frauds, replace=False)] = 1
        noise = rng.uniform(0, 0.5, n)
        score = np.where(y == 1, 0.5 + noise, noise) if good else rng.uniform(0, 1, n)
        parts.append(pd.DataFrame({"is_fraud": y, "score": score, "amount": 10.0}))
        labels += [name] * n
    frame = pd.concat(parts, ignore_index=True)
    return frame, pd.Series(labels)


def test_a_deliberately_bad_segment_is_flagged_and_a_tiny_one_is_not() -> None:
    frame, labels = _segment_frame(np.random.default_rng(3))
    from detection.metrics import average_precision

    overall = average_precision(frame["is_fraud"], frame["score"])
    section = segment_section(frame, {"segment": labels}, overall_ap=overall, threshold=0.5, min_frauds=20)
    rows = {r["segment"]: r for r in section["dimensions"]["segment"]}
    assert [f["segment"] for f in section["flagged"]] == ["C"]
    assert rows["C"]["average_precision"] < 0.8 * overall < rows["A"]["average_precision"]
    assert rows["D"]["flagged"] is False and rows["D"]["enough_frauds"] is False  # random, but only 3 frauds
    assert rows["A"]["recall_at_threshold"] == 1.0 and rows["A"]["frauds"] == 40
    assert "0.8 x the overall" in section["rule"]


def test_mcc_groups_follow_iso_ranges() -> None:
    assert mcc_group("5411") == "retail, grocery & fuel"
    assert mcc_group("6011") == "financial & cash"
    assert mcc_group("4511") == "transport"
    assert mcc_group(None) == mcc_group("54a1") == "missing"


def test_unusable_windows_and_data_raise_clear_errors(sim_frame: pd.DataFrame, tiny_bundle: ModelBundle,
                                                      windows: Any) -> None:
    with pytest.raises(ValidationError, match="outside the data"):
        evaluate_window(sim_frame, tiny_bundle, "2027-01-01", "2027-01-31")
    with pytest.raises(ValidationError, match="overlaps the training window"):
        evaluate_window(sim_frame, tiny_bundle, windows.train_end, windows.test_end)
    with pytest.raises(ValidationError, match="no fraud labels"):
        evaluate_window(sim_frame.drop(columns=["is_fraud"]), tiny_bundle, windows.test_start, windows.test_end)
    with pytest.raises(ValidationError, match="before"):
        evaluate_window(sim_frame, tiny_bundle, windows.test_end, windows.test_start)
