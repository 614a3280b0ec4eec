"""Population stability: the training reference of a model and the PSI against it.

A model is trained on one population and scores another. The population stability
index (PSI) says how far a distribution has moved from the one the model learned:

    PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%)

with the bins cut at the reference's deciles. The usual reading, used for flags
everywhere in fraudlens (validation report, promotion gate, stream drift metric):
below 0.1 stable, 0.1-0.25 a shift worth a look, above 0.25 a shift that needs
action. Missing values (NaN) get a bin of their own, so a feature that starts
arriving empty shows up as drift instead of vanishing from the counts.

:class:`BinnedReference` is what the bundle stores (``reference.json``): cut points
and the reference share per bin, for the score and every feature. Live code only
needs :meth:`BinnedReference.counts` and :func:`psi` - no raw training data.

>>> round(psi([0.5, 0.5], [0.25, 0.75]), 5)
0.27465
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

PSI_WARN = 0.1
PSI_ALERT = 0.25
#: Floor on a bin's share: an empty bin would make ln(a/e) infinite. 1e-4 is the
#: common choice; it caps one empty bin's contribution at about 0.1 * ln(1000) ~= 0.7.
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
REFERENCE_FILE = "reference.json"


def psi(expected: ArrayLike, actual: ArrayLike, *, epsilon: float = PSI_EPSILON) -> float:
    """PSI between two binned distributions given as counts or shares over the same bins.

    Both are normalised to shares; shares below ``epsilon`` are raised to it.
    ``nan`` when either side is empty (nothing to compare).
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1:
        raise ValueError(f"PSI needs two 1-D distributions over the same bins, got shapes {e.shape} and {a.shape}")
    if (e < 0).any() or (a < 0).any():
        raise ValueError("PSI needs non-negative counts or shares")
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_flag(value: float | None) -> str:
    """``stable`` / ``shift`` / ``major shift`` (or ``unknown`` for nan/None), by :data:`PSI_WARN`/:data:`PSI_ALERT`."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if value >= PSI_ALERT:
        return "major shift"
    if value >= PSI_WARN:
        return "shift"
    return "stable"


def decile_cuts(values: ArrayLike, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Interior cut points at the reference's quantiles (duplicates dropped: a feature
    that is mostly 0 gets fewer, wider bins). NaN values are ignored here."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.empty(0)
    qs = np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1], method="linear")
    return np.unique(qs)


def bin_counts(values: ArrayLike, cuts: np.ndarray) -> np.ndarray:
    """Counts per bin: ``len(cuts) + 1`` value bins (right-closed at each cut: ``v <= cut``),
    then one last bin for missing values (NaN)."""
    v = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(v)
    idx = np.searchsorted(cuts, v[~missing], side="left")
    counts = np.bincount(idx, minlength=cuts.size + 1).astype(np.float64)
    return np.append(counts, float(missing.sum()))


@dataclass(frozen=True)
class Binned:
    """One variable's reference: cut points and the share of reference rows per bin."""

    cuts: np.ndarray
    shares: np.ndarray

    @classmethod
    def fit(cls, values: ArrayLike, n_bins: int = DEFAULT_BINS) -> Binned:
        cuts = decile_cuts(values, n_bins)
        counts = bin_counts(values, cuts)
        total = counts.sum()
        return cls(cuts=cuts, shares=counts / total if total > 0 else counts)

    def counts(self, values: ArrayLike) -> np.ndarray:
        return bin_counts(values, self.cuts)

    def psi(self, values_or_counts: ArrayLike, *, binned: bool = False) -> float:
        """PSI of new values (or of counts already binned with :meth:`counts`) against this reference."""
        counts = np.asarray(values_or_counts, dtype=np.float64) if binned else self.counts(values_or_counts)
        return psi(self.shares, counts)

    def to_json(self) -> dict[str, Any]:
        return {"cuts": [float(c) for c in self.cuts], "shares": [float(s) for s in self.shares]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Binned:
        cuts = np.asarray(data["cuts"], dtype=np.float64)
        shares = np.asarray(data["shares"], dtype=np.float64)
        if shares.size != cuts.size + 2:
            raise ValueError(f"a binned reference with {cuts.size} cuts needs {cuts.size + 2} shares, got {shares.size}")
        return cls(cuts=cuts, shares=shares)


@dataclass(frozen=True)
class BinnedReference:
    """The training population of a model: the score and every feature, binned.

    ``importance`` orders features by the booster's total gain (most important
    first), so "the top features" means the same thing in the report, the gate and
    the stream's drift metric.
    """

    score: Binned
    features: dict[str, Binned]
    importance: list[str]
    n_rows: int
    window: dict[str, str]

    @classmethod
    def fit(cls, scores: ArrayLike, X: np.ndarray, feature_names: list[str], importance: list[str], *,
            window: dict[str, str], n_bins: int = DEFAULT_BINS) -> BinnedReference:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != len(feature_names):
            raise ValueError(f"{X.shape[1]} feature columns but {len(feature_names)} names")
        features = {name: Binned.fit(X[:, j], n_bins) for j, name in enumerate(feature_names)}
        ordered = [n for n in importance if n in features] + [n for n in feature_names if n not in importance]
        return cls(score=Binned.fit(scores, n_bins), features=features, importance=ordered,
                   n_rows=int(X.shape[0]), window=dict(window))

    def top_features(self, n: int) -> list[str]:
        return self.importance[:n]

    def to_json(self) -> dict[str, Any]:
        return {
            "what": "training-window distributions (decile bins + a missing bin) for PSI",
            "n_rows": self.n_rows,
            "window": self.window,
            "importance": self.importance,
            "score": self.score.to_json(),
            "features": {name: b.to_json() for name, b in self.features.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BinnedReference:
        return cls(
            score=Binned.from_json(data["score"]),
            features={str(k): Binned.from_json(v) for k, v in data["features"].items()},
            importance=[str(n) for n in data["importance"]],
            n_rows=int(data["n_rows"]),
            window={str(k): str(v) for k, v in data.get("window", {}).items()},
        )


def gain_importance(booster: Any, feature_names: list[str]) -> list[str]:
    """Feature names by the booster's total gain, highest first (ties and unused features by name)."""
    gains = booster.get_score(importance_type="total_gain")
    return sorted(feature_names, key=lambda n: (-float(gains.get(n, 0.0)), n))
