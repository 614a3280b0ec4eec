"""Alerts from a data file, and the narrative evaluation behind ``fraudlens explain-eval``.

:func:`load_scored` computes features (history before each row) and scores every
transaction of a file; :func:`pick_alerts` chooses N alerts spread over time;
:func:`summarize` turns narration results into the metrics validators read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explain.card import AlertCard
from explain.checks import CHECK_NAMES
from explain.faithfulness import score_faithfulness
from explain.narrator import NarrationResult, Narrator
from features.schema import Transaction, iter_transactions


@dataclass
class Scored:
    """A file's transactions in time order, their features (model order) and calibrated scores."""

    frame: pd.DataFrame
    X: np.ndarray
    scores: np.ndarray
    family_of: dict[str, str]

    def transactions(self, rows: Sequence[int] | np.ndarray) -> list[Transaction]:
        return list(iter_transactions(self.frame.iloc[np.asarray(rows, dtype=np.int64)]))

    def row_of(self, transaction_id: str) -> int:
        found = np.flatnonzero(self.frame["transaction_id"].to_numpy() == transaction_id)
        if not found.size:
            raise ValueError(f"transaction id {transaction_id!r} is not in the data file")
        return int(found[0])


def load_scored(frame: pd.DataFrame, bundle: Any, *, until: pd.Timestamp | None = None) -> Scored:
    """Features and scores of every row of a canonical frame (rows after ``until`` are left out)."""
    from detection.frames import compute_features
    from features.pipeline import FeaturePipeline

    pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    bundle.check_features(list(pipeline.feature_names))
    if until is not None:
        frame = frame.loc[frame["timestamp"] <= until]
    features = compute_features(frame, pipeline)
    scores = np.asarray(bundle.score(features.X), dtype=np.float64) if len(features.X) else np.zeros(0)
    return Scored(features.frame, features.X, scores, dict(pipeline.family_of))


def pick_alerts(scores: np.ndarray, threshold: float, n: int) -> np.ndarray:
    """Row positions of ``n`` alerts spread evenly over time; the highest scores when there are fewer alerts."""
    alerts = np.flatnonzero(scores >= threshold)
    if len(alerts) >= n:
        return alerts[np.linspace(0, len(alerts) - 1, n).round().astype(np.int64)]
    return np.sort(np.argsort(-scores, kind="stable")[:n])


def narrate_in_batches(narrator: Narrator, cards: Sequence[AlertCard], batch_size: int,
                       progress: Callable[[int], None] | None = None) -> list[NarrationResult]:
    out: list[NarrationResult] = []
    for start in range(0, len(cards), batch_size):
        out += narrator.narrate_detailed(cards[start : start + batch_size])
        if progress is not None:
            progress(len(out))
    return out


def summarize(results: Sequence[NarrationResult], *, wall_s: float) -> dict[str, Any]:
    """Faithfulness, check pass rates, fallback rate and latency of a set of narrations.

    ``mean_accuracy``/``mean_completeness`` score the narratives as shown on the cards
    (after retry and fallback); ``model_mean_*`` score the model's first answers alone.
    ``pass_rate`` is the share of first answers passing every check;
    ``pass_rate_after_retry`` the share of cards that show a model-written narrative.
    """
    n = len(results)
    if n == 0:
        return {"n": 0}
    final = [score_faithfulness(r.card.narrative.text, r.facts) for r in results]
    first = [score_faithfulness(r.raw_outputs[0], r.facts) for r in results]
    latencies = np.array([r.latency_ms for r in results], dtype=np.float64)
    failures = {name: 0 for name in (*CHECK_NAMES, "backend")}
    for r in results:
        for name, ok in r.first_checks.items():
            failures[name] = failures.get(name, 0) + (not ok)
    return {
        "n": n,
        "mean_accuracy": _mean([f.accuracy for f in final]),
        "mean_completeness": _mean([f.completeness for f in final]),
        "model_mean_accuracy": _mean([f.accuracy for f in first]),
        "model_mean_completeness": _mean([f.completeness for f in first]),
        "pass_rate": _mean([r.first_attempt_passed for r in results]),
        "pass_rate_after_retry": _mean([not r.fallback_used for r in results]),
        "fallback_rate": _mean([r.fallback_used for r in results]),
        "check_failure_rate_first_attempt": {k: round(v / n, 4) for k, v in failures.items()},
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 3),
            "p95": round(float(np.percentile(latencies, 95)), 3),
            "mean": round(float(latencies.mean()), 3),
        },
        "narratives_per_s": round(n / wall_s, 4) if wall_s > 0 else None,
        "wall_s": round(wall_s, 3),
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _mean(values: Sequence[float | bool]) -> float:
    return round(float(np.mean(np.asarray(values, dtype=np.float64))), 4) if values else 0.0
