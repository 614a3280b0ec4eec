"""Calibration of the bundle's probabilities out of time: reliability curve, Brier score, ECE.

ECE (expected calibration error) = sum over bins of (rows in bin / rows) * |mean
predicted - observed fraud rate|, on the probability scale. Bins are equal-width on
[0, 1] by default (the textbook definition, Naeini et al. 2015 / Guo et al. 2017),
so the value is comparable across models; ``strategy="quantile"`` gives equal-count
bins, which show more of the low-score region where most transactions sit.

Default limit :data:`ECE_LIMIT` = 0.02 (two percentage points of average gap between
stated and observed fraud probability): the score feeds alert thresholds and loss
estimates, and a larger average mis-statement is the usual trigger to recalibrate.
With fraud rates well under 1% most rows sit in the first bin, so the limit is
lenient there; the report therefore also shows the reliability bins and the
calibration-in-the-large (mean predicted vs observed rate). The limit is an option
(``--ece-limit``) and the report records the value used.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

ECE_LIMIT = 0.02
N_BINS = 10
Strategy = Literal["uniform", "quantile"]


def _arrays(y_true: ArrayLike, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and probabilities must be 1-D of one length, got {y.shape} and {p.shape}")
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise ValueError("calibration needs probabilities in [0, 1]")
    return y, p


def _edges(p: np.ndarray, n_bins: int, strategy: Strategy) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
        edges[0], edges[-1] = 0.0, 1.0
        return edges
    raise ValueError(f"unknown binning strategy {strategy!r}; use 'uniform' or 'quantile'")


def reliability(y_true: ArrayLike, probs: ArrayLike, *, n_bins: int = N_BINS,
                strategy: Strategy = "uniform") -> list[dict[str, Any]]:
    """One entry per non-empty bin: edges, rows, mean predicted probability, observed fraud rate.

    Bins are left-closed except the last (``[lo, hi)``, last ``[lo, 1]``).

    >>> [b["rows"] for b in reliability([0, 1, 1], [0.05, 0.5, 0.95], n_bins=2)]
    [1, 2]
    """
    y, p = _arrays(y_true, probs)
    edges = _edges(p, n_bins, strategy)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
    out = []
    for b in range(edges.size - 1):
        mask = idx == b
        n = int(mask.sum())
        if n == 0:
            continue
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "rows": n,
                    "mean_predicted": float(p[mask].mean()), "observed_rate": float(y[mask].mean()),
                    "frauds": int(y[mask].sum())})
    return out


def expected_calibration_error(y_true: ArrayLike, probs: ArrayLike, *, n_bins: int = N_BINS,
                               strategy: Strategy = "uniform") -> float:
    """Row-weighted mean |mean predicted - observed rate| over the bins of :func:`reliability`.

    >>> expected_calibration_error([0, 1], [0.2, 0.6], n_bins=2)
    0.3
    """
    bins = reliability(y_true, probs, n_bins=n_bins, strategy=strategy)
    total = sum(b["rows"] for b in bins)
    if total == 0:
        return math.nan
    return float(round(sum(b["rows"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in bins) / total, 15))


def brier_score(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean squared difference between probability and outcome (0 perfect; lower is better)."""
    y, p = _arrays(y_true, probs)
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def calibration_section(y_true: ArrayLike, probs: ArrayLike, *, ece_limit: float = ECE_LIMIT,
                        n_bins: int = N_BINS, strategy: Strategy = "uniform") -> dict[str, Any]:
    """The report's ``calibration`` block; ``passed`` = ECE <= ``ece_limit``."""
    y, p = _arrays(y_true, probs)
    ece = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
    brier = brier_score(y, p)
    # Brier of always predicting the observed rate: the skill score says how much better the model is.
    base = float(np.mean((y.mean() - y) ** 2)) if y.size else math.nan
    return {
        "brier": brier,
        "brier_reference": base,
        "brier_skill_score": (1.0 - brier / base) if base and math.isfinite(base) and base > 0 else None,
        "ece": ece,
        "ece_limit": float(ece_limit),
        "passed": bool(math.isfinite(ece) and ece <= ece_limit),
        "mean_predicted": float(p.mean()) if p.size else None,
        "observed_rate": float(y.mean()) if y.size else None,
        "n_bins": n_bins,
        "strategy": strategy,
        "bins": reliability(y, p, n_bins=n_bins, strategy=strategy),
    }
