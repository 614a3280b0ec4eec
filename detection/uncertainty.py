"""Bootstrap confidence intervals for the headline metrics, resampling whole days.

Fraud rows are not independent: one compromised card produces a burst of frauds on
the same day, and card precision@k is a mean over days. Resampling rows would
pretend each fraud is separate evidence and give intervals that are too narrow, so
the bootstrap draws *days* with replacement (a block bootstrap) and recomputes
every metric on the drawn days.

Scores are sorted once; a resample is a vector of per-row weights (how often its
day was drawn), and every metric is read off weighted cumulative sums, so one
replicate costs O(rows) with no sort. With all weights 1 the metrics equal
:mod:`detection.metrics` (tested against scikit-learn).

:func:`paired_difference` draws the same days for two models scored on the same
rows: the interval of the *difference*, which is what a promotion gate needs
(two overlapping marginal intervals say little about which model is better).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

DEFAULT_RESAMPLES = 500
DEFAULT_LEVEL = 0.95
#: Metrics with intervals; the names match :data:`detection.metrics.EVALUATION_KEYS`.
INTERVAL_METRICS: tuple[str, ...] = ("auc_roc", "average_precision", "recall_at_1pct_fpr", "card_precision_at_k")


@dataclass(frozen=True)
class Interval:
    """A point estimate on the full sample and its percentile bootstrap interval."""

    value: float
    low: float
    high: float
    level: float
    n_resamples: int

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {"value": clean(self.value), "ci_low": clean(self.low), "ci_high": clean(self.high),
                "level": self.level, "n_resamples": self.n_resamples}


class _SortedRows:
    """Rows sorted by score (descending) once, with tie groups, for O(n) weighted metrics."""

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        order = np.argsort(-s, kind="stable")
        self.order = order
        self.y = y[order]
        ss = s[order]
        # A tie group is one threshold: all rows with the same score are flagged together.
        self.starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]]) if ss.size else np.empty(0, dtype=np.int64)

    def metrics(self, w_sorted: np.ndarray, max_fpr: float) -> dict[str, float]:
        if self.starts.size == 0:
            return dict.fromkeys(("auc_roc", "average_precision", "recall_at_1pct_fpr"), math.nan)
        tp_g = np.add.reduceat(w_sorted * self.y, self.starts)
        fp_g = np.add.reduceat(w_sorted * (1.0 - self.y), self.starts)
        tp, fp = np.cumsum(tp_g), np.cumsum(fp_g)
        pos, neg = tp[-1], fp[-1]
        out: dict[str, float] = {}
        if pos > 0:
            precision = tp / np.maximum(tp + fp, 1e-300)
            out["average_precision"] = float(np.sum(tp_g * precision) / pos)
        else:
            out["average_precision"] = math.nan
        if pos > 0 and neg > 0:
            tpr, fpr = tp / pos, fp / neg
            tpr_prev = np.r_[0.0, tpr[:-1]]
            out["auc_roc"] = float(np.sum(fp_g / neg * (tpr + tpr_prev) / 2.0))
            ok = fpr <= max_fpr
            out["recall_at_1pct_fpr"] = float(tpr[ok].max()) if ok.any() else 0.0
        else:
            out["auc_roc"] = out["recall_at_1pct_fpr"] = math.nan
        return out


class DayBootstrap:
    """Metrics of one or more score columns over the same labelled rows, resampled by day.

    ``days`` are any hashable per-row day keys; ``cards`` the card ids (for card
    precision@k). Build once, then :meth:`intervals` or :func:`paired_difference`.
    """

    def __init__(self, y: ArrayLike, days: ArrayLike, cards: ArrayLike, *, k: int = 100, max_fpr: float = 0.01) -> None:
        self.y = np.asarray(y, dtype=np.float64)
        codes, uniques = pd.factorize(pd.Series(np.asarray(days)), sort=True)
        self.day_index = codes.astype(np.int64)
        self.n_days = len(uniques)
        self.cards = np.asarray(cards)
        if not (self.y.shape == self.day_index.shape == self.cards.shape):
            raise ValueError("labels, days and cards must have one value per row")
        self.k = k
        self.max_fpr = max_fpr

    def day_draws(self, n_resamples: int, seed: int) -> np.ndarray:
        """``(n_resamples, n_days)`` counts: how often each day was drawn in each replicate."""
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, self.n_days, size=(n_resamples, self.n_days))
        return np.stack([np.bincount(row, minlength=self.n_days) for row in picks]).astype(np.float64)

    def _per_day_card_precision(self, s: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame({"day": self.day_index, "card": self.cards, "y": self.y, "s": s})
        per_card = frame.groupby(["day", "card"], sort=True).agg(s=("s", "max"), y=("y", "max")).reset_index()
        per_card = per_card.sort_values(["day", "s", "card"], ascending=[True, False, True], kind="stable")
        top = per_card.groupby("day", sort=True).head(self.k)
        per_day = top.groupby("day", sort=True)["y"].mean()
        out = np.full(self.n_days, np.nan)
        out[per_day.index.to_numpy()] = per_day.to_numpy()
        return out

    def replicates(self, scores: ArrayLike, draws: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Full-sample metrics and one array of replicate values per metric."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != self.y.shape:
            raise ValueError(f"{s.shape[0]} scores for {self.y.shape[0]} labelled rows")
        rows = _SortedRows(self.y, s)
        day_sorted = self.day_index[rows.order]
        cp_day = self._per_day_card_precision(s)
        has_cp = np.isfinite(cp_day)

        def card_precision(day_weights: np.ndarray) -> float:
            w = day_weights[has_cp]
            return float(np.sum(w * cp_day[has_cp]) / w.sum()) if w.sum() > 0 else math.nan

        full = rows.metrics(np.ones_like(rows.y), self.max_fpr)
        full["card_precision_at_k"] = card_precision(np.ones(self.n_days))
        reps: dict[str, list[float]] = {name: [] for name in INTERVAL_METRICS}
        for day_weights in draws:
            values = rows.metrics(day_weights[day_sorted], self.max_fpr)
            values["card_precision_at_k"] = card_precision(day_weights)
            for name in INTERVAL_METRICS:
                reps[name].append(values[name])
        return full, {name: np.asarray(v) for name, v in reps.items()}

    def intervals(self, scores: ArrayLike, *, n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                  seed: int = 0) -> dict[str, Interval]:
        """Point value and percentile interval of each metric in :data:`INTERVAL_METRICS`."""
        full, reps = self.replicates(scores, self.day_draws(n_resamples, seed))
        return {name: _interval(full[name], reps[name], level, n_resamples) for name in INTERVAL_METRICS}


def _interval(value: float, replicates: np.ndarray, level: float, n_resamples: int) -> Interval:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or not math.isfinite(value):
        return Interval(value, math.nan, math.nan, level, n_resamples)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(value), float(low), float(high), level, n_resamples)


def paired_difference(boot: DayBootstrap, scores_a: ArrayLike, scores_b: ArrayLike, *,
                      n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                      seed: int = 0) -> dict[str, Interval]:
    """Interval of ``metric(b) - metric(a)`` per metric, both computed on the same drawn days."""
    draws = boot.day_draws(n_resamples, seed)
    full_a, reps_a = boot.replicates(scores_a, draws)
    full_b, reps_b = boot.replicates(scores_b, draws)
    return {name: _interval(full_b[name] - full_a[name], reps_b[name] - reps_a[name], level, n_resamples)
            for name in INTERVAL_METRICS}


def bootstrap_interval(statistic: Callable[[np.ndarray], float], values: ArrayLike, *,
                       n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0) -> Interval:
    """Plain row bootstrap of any statistic of one array (for quantities without day structure)."""
    v = np.asarray(values)
    rng = np.random.default_rng(seed)
    reps = np.array([statistic(v[rng.integers(0, v.size, v.size)]) for _ in range(n_resamples)]) if v.size else np.array([])
    return _interval(float(statistic(v)) if v.size else math.nan, reps, level, n_resamples)
