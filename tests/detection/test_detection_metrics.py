"""Metric functions against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from detection.metrics import (
    EVALUATION_KEYS,
    auc_roc,
    average_precision,
    card_precision_at_k,
    evaluate,
    fraud_amount_caught_share,
    precision_recall_at_threshold,
    recall_at_fpr,
)

Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_auc_of_the_textbook_example() -> None:
    # 4 (positive, negative) pairs, 3 ordered correctly.
    assert auc_roc(Y, S) == pytest.approx(0.75)


def test_average_precision_is_the_step_area() -> None:
    # Ranked: 0.8 (fraud) -> P=1 at R=.5; 0.4 (legit); 0.35 (fraud) -> P=2/3 at R=1.
    assert average_precision(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_undefined_metrics_are_nan() -> None:
    assert math.isnan(auc_roc([0, 0], [0.1, 0.2]))
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))
    assert math.isnan(recall_at_fpr([1, 1], [0.1, 0.2]))


def test_recall_at_one_percent_fpr_allows_one_false_positive_in_a_hundred() -> None:
    y = [0] * 100 + [1] * 4
    s = [i / 100 for i in range(100)] + [0.995, 0.985, 0.5, 0.2]
    # Cutting at 0.985 flags the legit 0.99 (FPR 1%) and two frauds; one step lower costs FPR 2%.
    assert recall_at_fpr(y, s, 0.01) == pytest.approx(0.5)


def test_precision_recall_and_amount_at_threshold() -> None:
    y = [1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.3, 0.2, 0.95]
    precision, recall = precision_recall_at_threshold(y, s, 0.5)
    assert (precision, recall) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    assert fraud_amount_caught_share(y, s, [100, 50, 300, 10, 20], 0.5) == pytest.approx(100 / 400)
    no_alert_precision, _ = precision_recall_at_threshold(y, s, 0.99)
    assert math.isnan(no_alert_precision)


def _cards() -> tuple[list[str], list[int], list[int], list[float]]:
    # day 1: A max .9 defrauded; B max .8 legit; C max .7, defrauded by its low-scored second tx.
    # day 2: only D, defrauded.
    cards = ["A", "B", "C", "C", "D"]
    days = [1, 1, 1, 1, 2]
    y = [1, 0, 0, 1, 1]
    s = [0.9, 0.8, 0.7, 0.1, 0.6]
    return cards, days, y, s


def test_card_precision_at_k_by_hand() -> None:
    cards, days, y, s = _cards()
    # k=2: day 1 top {A, B} -> 1/2; day 2 has one card -> 1/1. Mean 0.75.
    assert card_precision_at_k(cards, days, y, s, k=2) == pytest.approx(0.75)
    # k=3: day 1 {A, B, C} -> 2/3 (C counts: any fraud that day); day 2 -> 1.
    assert card_precision_at_k(cards, days, y, s, k=3) == pytest.approx((2 / 3 + 1) / 2)
    assert card_precision_at_k(cards, days, y, s, k=1) == pytest.approx(1.0)


def test_card_precision_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        card_precision_at_k(["a"], [1], [0], [0.1], k=0)


def test_evaluate_leaves_unlabelled_rows_out_and_returns_json_ready_values() -> None:
    cards, _days, y, s = _cards()
    ts = pd.to_datetime(["2026-01-01T10:00Z"] * 4 + ["2026-01-02T10:00Z"], utc=True)
    frame = pd.DataFrame({"card_id": cards, "timestamp": ts, "is_fraud": np.array(y, dtype=float),
                          "score": s, "amount": [10.0, 20, 30, 40, 50]})
    unlabelled = pd.DataFrame({"card_id": ["Z"], "timestamp": ts[:1], "is_fraud": [np.nan], "score": [0.99],
                               "amount": [1.0]})
    result = evaluate(pd.concat([frame, unlabelled], ignore_index=True), threshold=0.75, k=2)
    assert tuple(result) == EVALUATION_KEYS
    assert result["n_transactions"] == 5 and result["n_frauds"] == 3
    assert result["card_precision_at_k"] == pytest.approx(0.75)
    assert result["precision_at_threshold"] == pytest.approx(1 / 2)  # A (fraud) and B (legit) alert
    assert result["fraud_amount_caught_share"] == pytest.approx(10 / (10 + 40 + 50))
    single_class = evaluate(frame.assign(is_fraud=0.0), threshold=0.75, k=2)
    assert single_class["auc_roc"] is None and single_class["n_frauds"] == 0


def test_evaluate_without_labels_says_so() -> None:
    with pytest.raises(ValueError, match="is_fraud"):
        evaluate(pd.DataFrame({"score": [0.1]}), threshold=0.5)
