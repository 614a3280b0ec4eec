"""Threshold analysis: what each candidate threshold would cost (alerts per day) and catch.

Rows: a fixed grid of probabilities, the thresholds that give common alert rates on
this window, and the bundle's own threshold (marked ``is_bundle``). Alerts count every
window row; recall, precision and the share of fraud amount caught use the labelled
rows (:mod:`detection.metrics`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detection.metrics import fraud_amount_caught_share, precision_recall_at_threshold
from detection.validation.window import EvaluatedWindow

PROBABILITY_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
ALERT_RATE_GRID: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02)


def _clean(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def threshold_row(window: EvaluatedWindow, threshold: float) -> dict[str, Any]:
    scores = window.scored["score"].to_numpy(dtype=np.float64)
    n_alerts = int((scores >= threshold).sum())
    y, s = window.y, window.labelled_column("score").astype(float)
    precision, recall = precision_recall_at_threshold(y, s, threshold)
    amount = fraud_amount_caught_share(y, s, window.labelled_column("amount").astype(float), threshold)
    return {
        "threshold": float(threshold),
        "alerts": n_alerts,
        "alerts_per_day": n_alerts / max(window.n_days, 1),
        "alert_rate": n_alerts / max(len(scores), 1),
        "recall": _clean(recall),
        "precision": _clean(precision),
        "fraud_amount_share": _clean(amount),
    }


def threshold_section(window: EvaluatedWindow, bundle_threshold: float) -> dict[str, Any]:
    """Rows sorted by threshold (descending: fewest alerts first)."""
    scores = window.scored["score"].to_numpy(dtype=np.float64)
    by_rate = [float(np.quantile(scores, 1.0 - rate)) for rate in ALERT_RATE_GRID]
    candidates = sorted({round(t, 12) for t in (*PROBABILITY_GRID, *by_rate)} | {float(bundle_threshold)}, reverse=True)
    rows = []
    for t in candidates:
        row = threshold_row(window, t)
        row["is_bundle"] = t == float(bundle_threshold)
        rows.append(row)
    return {"bundle_threshold": float(bundle_threshold), "days": window.n_days, "rows": rows}
