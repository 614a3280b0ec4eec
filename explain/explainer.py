"""From scored transactions to alert cards, for one model bundle.

:class:`AlertExplainer` holds the bundle and its SHAP explainer and turns a batch of
transactions with their feature rows into :class:`~explain.card.AlertCard`\\ s:
batch attribution (additivity checked), reason codes, what-if facts for alerts,
masked facts and the template narrative. Narratives by a model are added later and
elsewhere (:class:`~explain.worker.NarrativeWorker`), so this never waits on one.

>>> explainer = AlertExplainer.from_settings(bundle, settings.narrative).setup()   # doctest: +SKIP
>>> cards = explainer.cards(transactions, X)                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explain.attribution import Attribution, TreeAttributor
from explain.card import AlertCard, build_alert_card
from explain.codes import card_currency
from explain.reasons import FAMILY_OF, ReasonCode, reason_codes
from explain.settings import NarrativeSettings
from explain.whatif import WhatIf, what_ifs_many
from features.schema import Transaction


class AlertExplainer:
    """Cards for a bundle's alerts. ``setup()`` builds the SHAP explainer."""

    def __init__(
        self,
        bundle: Any,
        *,
        family_of: Mapping[str, str] | None = None,
        top_k: int = 5,
        narrative_top_k: int = 3,
        currency: str = "EUR",
        customer_hash_key: bytes | None = None,
        what_if: bool = True,
    ) -> None:
        self.bundle = bundle
        self.family_of = dict(family_of or getattr(bundle, "families", None) or FAMILY_OF)
        self.top_k = top_k
        self.narrative_top_k = narrative_top_k
        self.currency = currency
        self.customer_hash_key = customer_hash_key
        self.what_if = what_if
        self.attributor = TreeAttributor.from_bundle(bundle)

    @classmethod
    def from_settings(cls, bundle: Any, settings: NarrativeSettings, *, family_of: Mapping[str, str] | None = None,
                      what_if: bool = True) -> AlertExplainer:
        key = settings.customer_hash_key.get_secret_value().encode() if settings.customer_hash_key else None
        return cls(bundle, family_of=family_of, top_k=settings.top_k, narrative_top_k=settings.eval_top_k,
                   currency=settings.currency, customer_hash_key=key, what_if=what_if)

    def setup(self) -> AlertExplainer:
        self.attributor.setup()
        return self

    @property
    def threshold(self) -> float:
        return float(self.bundle.threshold.threshold)

    def attribute(self, X: Any, *, ids: Sequence[str] | None = None) -> Attribution:
        """Batch SHAP attribution in log-odds, checked against ``bundle.margin``."""
        return self.attributor.attribute(X, ids=ids)

    def cards(
        self,
        transactions: Sequence[Transaction],
        X: Any,
        *,
        scores: Sequence[float] | np.ndarray | None = None,
        anomaly_scores: Sequence[float] | np.ndarray | None = None,
        decisions: Sequence[str] | None = None,
    ) -> list[AlertCard]:
        """One card per transaction; ``X`` holds their feature rows in model order (array or frame).

        Scores, anomaly scores and decisions are computed with the bundle when not given
        (the streaming service passes the ones it already has).
        """
        matrix = self.attributor.matrix(X)
        if len(transactions) != len(matrix):
            raise ValueError(f"{len(transactions)} transactions but {len(matrix)} feature rows")
        if not len(matrix):
            return []
        score = np.asarray(self.bundle.score(matrix) if scores is None else scores, dtype=np.float64)
        anomaly_fn = getattr(self.bundle, "anomaly_score", None)
        if anomaly_scores is None and anomaly_fn is not None:
            anomaly_scores = anomaly_fn(matrix)
        attribution = self.attribute(matrix, ids=[tx.transaction_id for tx in transactions])
        row_attributions = [attribution[i] for i in range(len(matrix))]
        currencies = [card_currency(tx.currency, self.currency) for tx in transactions]
        # Computed once per row: the what-ifs read them and the card shows them.
        reasons = [reason_codes(row_attr, top_k=self.top_k, currency=currency, family_of=self.family_of)
                   for row_attr, currency in zip(row_attributions, currencies, strict=True)]
        found = self._what_ifs(matrix, score, reasons, currencies)
        return [
            build_alert_card(
                tx, row_attributions[i], score=float(score[i]), threshold=self.threshold,
                decision=None if decisions is None else decisions[i],
                anomaly_score=None if anomaly_scores is None else float(anomaly_scores[i]),
                family_of=self.family_of, what_if=found[i], reasons=reasons[i], top_k=self.top_k,
                narrative_top_k=self.narrative_top_k, currency=self.currency, customer_hash_key=self.customer_hash_key,
            )
            for i, tx in enumerate(transactions)
        ]

    def _what_ifs(self, matrix: np.ndarray, score: np.ndarray, reasons: Sequence[Sequence[ReasonCode]],
                  currencies: Sequence[str]) -> list[list[WhatIf]]:
        """What-ifs of every alerted row (none for the others), all found in at most two model calls."""
        found: list[list[WhatIf]] = [[] for _ in range(len(matrix))]
        if not self.what_if:
            return found
        alerted: list[int] = np.flatnonzero(score >= self.threshold).tolist()
        batch = what_ifs_many(matrix[alerted], list(self.attributor.feature_names), [reasons[i] for i in alerted],
                              self.bundle.score, self.threshold, currencies=[currencies[i] for i in alerted])
        for i, what in zip(alerted, batch, strict=True):
            found[i] = what
        return found
