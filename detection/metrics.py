"""Fraud-detection metrics: ranking quality, operating-point quality and card-level precision.

All functions take plain arrays (labels 0/1, scores where higher = more suspicious)
and ignore nothing silently: rows without a label must be dropped by the caller
(:func:`evaluate` does it). Undefined values (e.g. AUC with a single class) are
``nan``; :func:`evaluate` turns them into ``None`` so the result is valid JSON.

>>> average_precision([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
1.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

EVALUATION_KEYS: tuple[str, ...] = (
    "auc_roc",
    "average_precision",
    "recall_at_1pct_fpr",
    "card_precision_at_k",
    "precision_at_threshold",
    "recall_at_threshold",
    "fraud_amount_caught_share",
    "n_transactions",
    "n_frauds",
)


def _labels_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < y.sum() < y.size


def auc_roc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve; nan when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s = _labels_scores(y_true, scores)
    return float(roc_auc_score(y, s)) if _both_classes(y) else math.nan


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Average precision (area under the precision-recall curve, step-wise); nan without frauds."""
    from sklearn.metrics import average_precision_score

    y, s = _labels_scores(y_true, scores)
    return float(average_precision_score(y, s)) if y.sum() > 0 else math.nan


def recall_at_fpr(y_true: ArrayLike, scores: ArrayLike, max_fpr: float = 0.01) -> float:
    """Highest recall reachable while flagging at most ``max_fpr`` of legitimate transactions."""
    from sklearn.metrics import roc_curve

    y, s = _labels_scores(y_true, scores)
    if not _both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    return float(tpr[fpr <= max_fpr].max())


def precision_recall_at_threshold(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> tuple[float, float]:
    """(precision, recall) of the alerts ``score >= threshold``. Precision is nan with no alert."""
    y, s = _labels_scores(y_true, scores)
    alert = s >= threshold
    n_alerts = int(alert.sum())
    caught = float(y[alert].sum())
    precision = caught / n_alerts if n_alerts else math.nan
    recall = caught / y.sum() if y.sum() > 0 else math.nan
    return precision, recall


def fraud_amount_caught_share(y_true: ArrayLike, scores: ArrayLike, amounts: ArrayLike, threshold: float) -> float:
    """Fraud amount in alerted transactions / total fraud amount."""
    y, s = _labels_scores(y_true, scores)
    amount = np.asarray(amounts, dtype=np.float64)
    fraud_amount = np.nansum(amount * y)
    if fraud_amount <= 0:
        return math.nan
    return float(np.nansum(amount * y * (s >= threshold)) / fraud_amount)


def card_precision_at_k(
    card_ids: ArrayLike, days: ArrayLike, y_true: ArrayLike, scores: ArrayLike, k: int = 100
) -> float:
    """Mean over days of the share of defrauded cards among the day's top-k cards.

    Each day, every card gets its highest score of the day and counts as defrauded
    when any of its transactions that day is fraud. The k cards with the highest
    score are "investigated"; the day's value is the share of them that were
    defrauded. On a day with fewer than k cards all of them are taken and the share
    is over that smaller number (an investigator cannot open cards that do not
    exist). Ties at the cut are broken by card id so the value is deterministic.

    >>> card_precision_at_k(["a", "a", "b", "c"], [1, 1, 1, 1], [0, 1, 0, 0], [0.2, 0.1, 0.5, 0.3], k=2)
    0.0
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y, s = _labels_scores(y_true, scores)
    frame = pd.DataFrame({"card": np.asarray(card_ids), "day": np.asarray(days), "y": y, "s": s})
    if frame.empty:
        return math.nan
    per_card = frame.groupby(["day", "card"], sort=True).agg(s=("s", "max"), y=("y", "max")).reset_index()
    per_card = per_card.sort_values(["day", "s", "card"], ascending=[True, False, True], kind="stable")
    top = per_card.groupby("day", sort=True).head(k)
    return float(top.groupby("day", sort=True)["y"].mean().mean())


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def evaluate(frame: pd.DataFrame, threshold: float, k: int = 100, *, score_column: str = "score") -> dict[str, Any]:
    """All headline metrics for a scored canonical frame.

    ``frame`` needs ``is_fraud``, ``card_id``, ``timestamp`` (UTC), ``amount`` and the
    score column. Rows without a label are left out (their outcome is unknown).
    Keys are :data:`EVALUATION_KEYS`; undefined values are ``None``.
    """
    if "is_fraud" not in frame:
        raise ValueError("cannot evaluate: the data has no 'is_fraud' label column")
    labelled = frame.loc[frame["is_fraud"].notna()]
    y = labelled["is_fraud"].to_numpy(dtype=np.float64)
    s = labelled[score_column].to_numpy(dtype=np.float64)
    days = labelled["timestamp"].dt.floor("D").to_numpy()
    precision, recall = precision_recall_at_threshold(y, s, threshold)
    out = {
        "auc_roc": auc_roc(y, s),
        "average_precision": average_precision(y, s),
        "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01),
        "card_precision_at_k": card_precision_at_k(labelled["card_id"].to_numpy(), days, y, s, k),
        "precision_at_threshold": precision,
        "recall_at_threshold": recall,
        "fraud_amount_caught_share": fraud_amount_caught_share(y, s, labelled["amount"].to_numpy(), threshold),
    }
    result: dict[str, Any] = {key: _finite_or_none(value) for key, value in out.items()}
    result["n_transactions"] = len(labelled)
    result["n_frauds"] = int(y.sum())
    return result
