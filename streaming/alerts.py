"""Alert cards for the alerted rows of a scored micro-batch.

Two builders behind one small protocol:

* :class:`ExplainedCards` — the real card: SHAP attribution, reason codes, what-ifs and
  the template narrative, from ``explain.AlertExplainer`` (needs the model bundle);
* :class:`MinimalCards` — a masked minimal card (id, last four of the card, score,
  threshold, model version) for scorers without a model (tests, the plumbing bench),
  and the fallback when an explanation fails: an alert is never dropped for want of
  an explanation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from features.schema import Transaction

log = logging.getLogger(__name__)

MINIMAL_CARD_SCHEMA = "fraudlens.alert-card/minimal-1"


class CardBuilder(Protocol):
    def build(self, txs: Sequence[Transaction], scored: Any, rows: Sequence[int]) -> list[dict[str, Any]]:
        """One JSON-ready card per alerted transaction; ``rows`` index ``scored`` (a ScoredBatch)."""
        ...


def mask_card(card_id: str) -> str:
    """Only the last four characters of a card id ever leave the service."""
    return "****" + card_id[-4:] if len(card_id) > 4 else "****"


def minimal_card(tx: Transaction, *, score: float, threshold: float, model_version: str) -> dict[str, Any]:
    """The explained card's shape (``transaction``, ``score``, ``reasons`` …) without the explanation,
    so consumers of the alerts topic read both kinds the same way."""
    stamp = datetime.fromtimestamp(tx.timestamp_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return {
        "schema_version": MINIMAL_CARD_SCHEMA,
        "alert_id": tx.transaction_id,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "transaction": {
            "transaction_id": tx.transaction_id,
            "timestamp": stamp,
            "amount": tx.amount,
            "currency": tx.currency,
            "card": mask_card(tx.card_id),
            "merchant_id": tx.merchant_id,
        },
        "score": score,
        "threshold": threshold,
        "decision": "alert",
        "model_version": model_version,
        "reasons": [],
        "narrative": None,
    }


class MinimalCards:
    """Masked minimal cards; no model needed."""

    def build(self, txs: Sequence[Transaction], scored: Any, rows: Sequence[int]) -> list[dict[str, Any]]:
        threshold = float(scored.threshold)
        return [
            minimal_card(tx, score=float(scored.scores[row]), threshold=threshold, model_version=scored.model_version)
            for tx, row in zip(txs, rows, strict=True)
        ]


class ExplainedCards:
    """Cards from ``explain.AlertExplainer`` (SHAP + reasons + template narrative) on the batch's features."""

    def __init__(self, explainer: Any) -> None:
        self.explainer = explainer
        self._fallback = MinimalCards()

    @classmethod
    def from_bundle(cls, bundle: Any, narrative_settings: Any | None = None) -> ExplainedCards:
        from explain.explainer import AlertExplainer
        from explain.settings import NarrativeSettings

        settings = narrative_settings if narrative_settings is not None else NarrativeSettings()
        return cls(AlertExplainer.from_settings(bundle, settings).setup())

    def build(self, txs: Sequence[Transaction], scored: Any, rows: Sequence[int]) -> list[dict[str, Any]]:
        if not rows:
            return []
        try:
            X = scored.features[list(rows)]
            cards = self.explainer.cards(list(txs), X, scores=scored.scores[list(rows)],
                                         decisions=["alert"] * len(rows))
            return [card.model_dump(mode="json") for card in cards]
        except Exception:  # noqa: BLE001 - an explanation bug must not lose or delay the alert itself
            log.exception("alert explanation failed; minimal cards used", extra={"alerts": len(rows)})
            cards = self._fallback.build(txs, scored, rows)
            for card in cards:
                card["explanation_error"] = True
            return cards
