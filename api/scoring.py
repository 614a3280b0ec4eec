"""Synchronous scoring for POST /v1/score, on the stream's own :class:`~streaming.scoring.ModelScorer`.

Online features come from the state store the settings select (Redis: the one the
stream uses). Scoring updates per-entity state, so it is serialised by a lock: two
requests for one card must not read the same state and both write theirs back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.errors import ApiError
from features.schema import Transaction


def resolve_model_path(model_path: Path | None, registry_dir: Path) -> Path:
    """The bundle to serve: the configured one, else the registry's champion."""
    if model_path is not None:
        return Path(model_path)
    from detection.registry import ModelRegistry

    registry = ModelRegistry(registry_dir)
    return registry.root / registry.champion_version()


def _refused(refusals: Sequence[Any]) -> ApiError:
    """A 422 naming each refused item (its position and transaction id) and the reason."""
    errors = [{"field": f"[{r.index}]", "transaction_id": r.transaction_id, "reason": r.reason} for r in refusals]
    detail = "; ".join(f"item {r.index} (transaction_id {r.transaction_id!r}): {r.reason}" for r in refusals[:5])
    return ApiError(detail, status=422, title="Transaction refused", errors=errors)


class ScoreService:
    """Scores, decisions and top reasons for a batch; the full alert card on request."""

    def __init__(self, scorer: Any, *, top_reasons: int = 3, currency: str = "EUR") -> None:
        self.scorer = scorer
        self.top_reasons = top_reasons
        self.currency = currency
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_path: Path, state_settings: Any, narrative_settings: Any) -> ScoreService:
        from streaming.scoring import ModelScorer

        scorer = ModelScorer.load(model_path, state_settings, narrative_settings, explain=True)
        return cls(scorer, top_reasons=min(3, narrative_settings.top_k), currency=narrative_settings.currency)

    @property
    def model_version(self) -> str:
        return str(self.scorer.model_version)

    def score(self, txs: Sequence[Transaction], *, explain: bool = False,
              narratives: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from explain.reasons import reason_codes

        with self._lock:
            # A trial on copies of the state first: a request with a refused item (late, or one a
            # feature step raises on) is a 422 that leaves the state as it was, for every item.
            online = getattr(self.scorer, "online", None)
            refused = online.trial(list(txs)) if online is not None else []
            if refused:
                raise _refused(refused)
            scored = self.scorer.score_batch(list(txs))
        if scored.refused:  # the trial saw the same state and code: only a nondeterministic bug gets here
            raise _refused(scored.refused)
        explainer = self.scorer.cards.explainer
        attribution = explainer.attribute(scored.features, ids=[tx.transaction_id for tx in txs])
        decisions = ["alert" if flag else "pass" for flag in scored.alerts]
        cards: list[dict[str, Any] | None] = [None] * len(txs)
        if explain:
            built = explainer.cards(list(txs), scored.features, scores=scored.scores, decisions=decisions)
            for i, card in enumerate(built):
                ready = (narratives or {}).get(txs[i].transaction_id)
                data = card.model_dump(mode="json")
                if ready is not None:
                    data["narrative"] = ready  # the worker's checked narrative beats the template
                cards[i] = data
        out = []
        for i, tx in enumerate(txs):
            reasons = reason_codes(attribution[i], top_k=self.top_reasons, currency=tx.currency or self.currency,
                                   family_of=explainer.family_of)
            result: dict[str, Any] = {
                "transaction_id": tx.transaction_id,
                "score": float(scored.scores[i]),
                "decision": decisions[i],
                "threshold": float(scored.threshold),
                "model_version": scored.model_version,
                "reasons": [{"feature": r.feature, "text": r.text, "shap_value": r.shap_value,
                             "direction": r.direction} for r in reasons],
            }
            if explain:
                result["card"] = cards[i]
            out.append(result)
        return out
