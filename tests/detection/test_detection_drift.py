"""PSI and the binned training reference (detection.drift)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detection.drift import Binned, BinnedReference, bin_counts, psi, psi_flag


def test_psi_matches_a_hand_computed_example() -> None:
    # expected 50/50, actual 25/75:
    # (0.25-0.5)*ln(0.25/0.5) + (0.75-0.5)*ln(0.75/0.5) = 0.25*0.693147 + 0.25*0.405465 = 0.274653
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)
    # counts are normalised the same way as shares
    assert psi([50, 50], [25, 75]) == pytest.approx(psi([0.5, 0.5], [0.25, 0.75]))


def test_psi_is_zero_for_identical_distributions_and_floors_empty_bins() -> None:
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    # an empty actual bin is floored at 1e-4, not infinite:
    # (1e-4 - 0.5) ln(1e-4/0.5) + (1 - 0.5) ln(1/0.5)
    expected = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2.0)
    assert psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(expected)


def test_psi_rejects_mismatched_or_negative_inputs() -> None:
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        psi([0.5, 0.5], [-1.0, 2.0])
    assert math.isnan(psi([0, 0], [1, 1]))


@pytest.mark.parametrize(("value", "flag"), [(0.05, "stable"), (0.1, "shift"), (0.2, "shift"), (0.25, "major shift"),
                                             (float("nan"), "unknown"), (None, "unknown")])
def test_psi_flags_follow_the_01_and_025_limits(value: float | None, flag: str) -> None:
    assert psi_flag(value) == flag


def test_bins_put_missing_values_in_their_own_last_bin() -> None:
    cuts = np.array([1.0, 2.0])
    counts = bin_counts([0.5, 1.0, 1.5, 2.0, 3.0, np.nan, np.nan], cuts)
    # (-inf, 1], (1, 2], (2, inf), missing
    assert counts.tolist() == [2.0, 2.0, 1.0, 2.0]


def test_reference_of_the_same_population_is_stable_and_a_shift_is_flagged() -> None:
    rng = np.random.default_rng(7)
    ref = Binned.fit(rng.normal(size=50_000))
    assert ref.shares.sum() == pytest.approx(1.0)
    assert ref.psi(rng.normal(size=20_000)) < 0.01
    assert psi_flag(ref.psi(rng.normal(loc=1.0, size=20_000))) == "major shift"
    # a feature that starts arriving empty is drift too
    half_missing = np.where(rng.random(20_000) < 0.5, np.nan, rng.normal(size=20_000))
    assert ref.psi(half_missing) > 0.25


def test_reference_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=1000), rng.integers(0, 3, 1000).astype(float)])
    ref = BinnedReference.fit(rng.random(1000), X, ["a", "b"], ["b", "a"], window={"start": "2024-01-01", "end": "x"})
    back = BinnedReference.from_json(ref.to_json())
    assert back.importance == ["b", "a"] and back.top_features(1) == ["b"]
    assert np.array_equal(back.features["a"].cuts, ref.features["a"].cuts)
    # a feature with three distinct values gets at most three (deduplicated) cuts, not nine
    assert back.features["b"].cuts.tolist() == [0.0, 1.0, 2.0]
    assert back.score.psi(rng.random(1000)) < 0.05
