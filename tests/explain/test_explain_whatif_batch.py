"""What-ifs of a batch of alerts: at most two model calls, and exactly the what-ifs of each alert alone.

Run on the tiny booster and on a real bundle, whose small batches (<= ``bundle.small_batch`` rows)
are scored by the compiled trees and larger ones by ``inplace_predict``: batching moves a
row from one to the other, so both must give the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explain.card import build_alert_card
from explain.explainer import AlertExplainer
from explain.reasons import ReasonCode, reason_codes
from explain.whatif import what_ifs, what_ifs_many
from features.schema import Transaction


@dataclass
class Alerts:
    """Alerted feature rows of one model, with their transactions."""

    bundle: Any
    rows: np.ndarray
    transactions: list[Transaction]
    others: np.ndarray  # rows the model does not alert on
    other_transactions: list[Transaction]


class CountingScore:
    """A score function that records every array it is called with."""

    def __init__(self, score: Any) -> None:
        self.score = score
        self.calls: list[np.ndarray] = []

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(X, copy=True))
        return self.score(X)


@pytest.fixture(scope="module")
def tiny_alerts(tiny_bundle: Any, feature_rows: Any) -> Alerts:
    X = feature_rows.to_numpy()
    alerted = tiny_bundle.score(X) >= tiny_bundle.threshold.threshold

    def transactions(n: int, currency: str) -> list[Transaction]:
        return [Transaction.from_mapping({
            "transaction_id": f"tx-{currency}-{i}", "timestamp": "2026-03-14T02:17:00", "card_id": "4111111111111111",
            "merchant_id": "mer-00042", "amount": 2450.0, "currency": currency, "device_id": "device-9f8e7d6c5b4a3921",
        }) for i in range(n)]

    return Alerts(tiny_bundle, X[alerted], transactions(int(alerted.sum()), "GBP"), X[~alerted][:20],
                  transactions(20, "EUR"))


@pytest.fixture(scope="module")
def real_alerts(real_bundle: Any, sim_file: Path) -> Alerts:
    from explain.evaluate import load_scored
    from features.io import read_transactions

    scored = load_scored(read_transactions(sim_file).frame, real_bundle)
    alerted = np.flatnonzero(scored.scores >= real_bundle.threshold.threshold)
    others = np.flatnonzero(scored.scores < real_bundle.threshold.threshold)[::500]
    return Alerts(real_bundle, scored.X[alerted], scored.transactions(alerted), scored.X[others],
                  scored.transactions(others))


@pytest.fixture(params=["tiny", "real"])
def alerts(request: pytest.FixtureRequest) -> Alerts:
    found: Alerts = request.getfixturevalue(f"{request.param}_alerts")
    assert len(found.rows) >= 40, "the model should alert on enough rows for a batch"
    return found


def _reasons(explainer: AlertExplainer, rows: np.ndarray, currency: str) -> list[list[ReasonCode]]:
    attribution = explainer.attribute(rows)
    return [reason_codes(attribution[i], top_k=explainer.top_k, currency=currency, family_of=explainer.family_of)
            for i in range(len(rows))]


def _without_clock(card: Any) -> dict[str, Any]:
    """A card's JSON without the times it was built at (the only fields that differ between two builds)."""
    data = card.model_dump(mode="json")
    del data["created_at"], data["narrative"]["provenance"]["generated_at"]
    return data


def test_scores_do_not_depend_on_the_other_rows_of_a_call(alerts) -> None:
    explainer = AlertExplainer(alerts.bundle).setup()
    counting = CountingScore(alerts.bundle.score)
    what_ifs_many(alerts.rows, list(explainer.attributor.feature_names), _reasons(explainer, alerts.rows, "EUR"),
                  counting, explainer.threshold, currencies=["EUR"] * len(alerts.rows))
    assert counting.calls
    for X in counting.calls:
        alone = np.concatenate([alerts.bundle.score(X[i:i + 1]) for i in range(len(X))])
        in_blocks = np.concatenate([alerts.bundle.score(X[i:i + 24]) for i in range(0, len(X), 24)])
        together = alerts.bundle.score(X)
        assert np.array_equal(together, alone) and np.array_equal(together, in_blocks)  # bit for bit


def test_a_batch_of_alerts_gets_each_alerts_own_what_ifs_in_two_model_calls(alerts) -> None:
    explainer = AlertExplainer(alerts.bundle).setup()
    names = list(explainer.attributor.feature_names)
    reasons = _reasons(explainer, alerts.rows, "GBP")
    counting = CountingScore(alerts.bundle.score)
    batch = what_ifs_many(alerts.rows, names, reasons, counting, explainer.threshold,
                          currencies=["GBP"] * len(alerts.rows))
    one_by_one = [what_ifs(row, names, row_reasons, alerts.bundle.score, explainer.threshold, currency="GBP")
                  for row, row_reasons in zip(alerts.rows, reasons, strict=True)]
    assert batch == one_by_one  # same WhatIf objects: features, values, scores and text
    assert len(counting.calls) <= 2
    found = [what for row_what_ifs in batch for what in row_what_ifs]
    kinds = {(what.feature == "amount", what.under_threshold) for what in found}
    assert (True, True) in kinds and any(what.feature != "amount" for what in found), kinds


def test_rows_with_nothing_to_try_cost_no_model_call(tiny_bundle) -> None:
    counting = CountingScore(tiny_bundle.score)
    empty = np.empty((0, len(tiny_bundle.feature_names)))
    assert what_ifs_many(empty, tiny_bundle.feature_names, [], counting, 0.5, currencies=[]) == []
    rows = np.zeros((3, len(tiny_bundle.feature_names)))
    assert what_ifs_many(rows, tiny_bundle.feature_names, [[], [], []], counting, 0.5,
                         currencies=["EUR"] * 3) == [[], [], []]
    assert counting.calls == []


def test_cards_of_a_batch_equal_the_cards_built_one_by_one(alerts) -> None:
    explainer = AlertExplainer(alerts.bundle).setup()
    rows = np.concatenate([alerts.rows[:40], alerts.others])
    transactions = alerts.transactions[:40] + alerts.other_transactions
    order = np.random.default_rng(0).permutation(len(rows))  # alerts and passes interleaved
    rows, transactions = rows[order], [transactions[i] for i in order]
    batch = explainer.cards(transactions, rows)
    one_by_one = [explainer.cards([tx], rows[i:i + 1])[0] for i, tx in enumerate(transactions)]
    assert [_without_clock(card) for card in batch] == [_without_clock(card) for card in one_by_one]
    assert sum(bool(card.what_if) for card in batch) >= 20


def test_alert_card_with_precomputed_reasons_is_the_same_card(attributor, alert_rows, transaction_factory) -> None:
    attribution = attributor.attribute(alert_rows.to_numpy())
    now = datetime(2026, 3, 14, tzinfo=UTC)
    for i in range(len(alert_rows)):
        tx = transaction_factory()
        reasons = reason_codes(attribution[i], top_k=3, currency="EUR")
        given = build_alert_card(tx, attribution[i], score=0.9, threshold=0.5, top_k=3, reasons=reasons, now=now)
        computed = build_alert_card(tx, attribution[i], score=0.9, threshold=0.5, top_k=3, now=now)
        assert given == computed
