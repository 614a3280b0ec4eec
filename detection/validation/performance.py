"""Out-of-time performance of the bundle with day-bootstrap 95% intervals.

Intervals come from :class:`detection.uncertainty.DayBootstrap` (whole days are
resampled: frauds cluster by card and day); point values equal
:func:`detection.metrics.evaluate` on the same rows.
"""

from __future__ import annotations

from typing import Any

from detection.metrics import evaluate
from detection.uncertainty import DEFAULT_RESAMPLES, INTERVAL_METRICS, DayBootstrap
from detection.validation.window import EvaluatedWindow

#: Threshold-dependent figures shown beside the intervals (from :func:`detection.metrics.evaluate`).
AT_THRESHOLD_KEYS: tuple[str, ...] = ("precision_at_threshold", "recall_at_threshold", "fraud_amount_caught_share")


def day_bootstrap(window: EvaluatedWindow, *, k: int = 100) -> DayBootstrap:
    """The bootstrap over the window's labelled rows (shared by the model and its challengers)."""
    return DayBootstrap(window.y, window.days, window.labelled_column("card_id"), k=k)


def performance_section(window: EvaluatedWindow, threshold: float, *, k: int = 100,
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                        boot: DayBootstrap | None = None) -> dict[str, Any]:
    """``{"k", <metric>: Interval.to_json() ..., "at_threshold": {...}, "n_transactions", "n_frauds", "n_days"}``."""
    boot = boot or day_bootstrap(window, k=k)
    scores = window.labelled_column("score").astype(float)
    intervals = boot.intervals(scores, n_resamples=n_resamples, seed=seed)
    point = evaluate(window.scored, threshold, k=k)
    out: dict[str, Any] = {"k": k}
    out.update({name: intervals[name].to_json() for name in INTERVAL_METRICS})
    out["at_threshold"] = {"threshold": float(threshold), **{key: point[key] for key in AT_THRESHOLD_KEYS}}
    out["n_transactions"] = point["n_transactions"]
    out["n_frauds"] = point["n_frauds"]
    out["n_days"] = int(boot.n_days)
    out["interval_method"] = "percentile bootstrap over whole UTC days (detection.uncertainty.DayBootstrap)"
    return out
