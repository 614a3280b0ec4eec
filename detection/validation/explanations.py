"""Explanations: global SHAP importance, dependence, and a faithfulness audit of narratives.

* SHAP values (log-odds, additivity checked against the bundle's margin) come from
  :class:`explain.attribution.TreeAttributor` on a seeded random sample of the window;
  global importance is the mean |SHAP| per feature over the sample.
* The faithfulness audit builds alert cards for alerts spread over the window
  (:func:`explain.evaluate.pick_alerts`), writes their narratives with the
  ``template`` backend (no language model: deterministic and fast) through the real
  :class:`explain.narrator.Narrator` with its grounding checks, and scores them with
  :func:`explain.evaluate.summarize` (accuracy and completeness on 0-4 scales, check
  pass rates). A template narrative that scores below 4 points at a bug in the facts
  or checks; ``fraudlens explain-eval`` runs the same audit with a language model.

:mod:`explain` is imported inside the functions (see :mod:`detection.validation`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from detection.bundle import ModelBundle
from detection.validation.window import EvaluatedWindow

SHAP_SAMPLE = 500
N_ALERTS = 20
N_DEPENDENCE = 4


@dataclass
class ShapSample:
    """SHAP values of a sample of window rows: ``values`` and ``features`` are (n, f), model order."""

    values: np.ndarray
    features: np.ndarray
    feature_names: list[str]
    base_value: float
    rows: np.ndarray

    def importance(self) -> list[tuple[str, float]]:
        mean_abs = np.abs(self.values).mean(axis=0)
        order = sorted(range(len(self.feature_names)), key=lambda j: (-mean_abs[j], self.feature_names[j]))
        return [(self.feature_names[j], float(mean_abs[j])) for j in order]


def shap_sample(window: EvaluatedWindow, bundle: ModelBundle, *, n: int = SHAP_SAMPLE, seed: int = 0) -> ShapSample:
    from explain.attribution import TreeAttributor

    total = len(window.rows)
    rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    X = window.X[rows]
    attribution = TreeAttributor.from_bundle(bundle).setup().attribute(X)  # additivity checked here
    return ShapSample(np.asarray(attribution.values), X, list(bundle.feature_names), attribution.base_value, rows)


def faithfulness_audit(window: EvaluatedWindow, bundle: ModelBundle, *, n_alerts: int = N_ALERTS,
                       top_k: int = 3) -> dict[str, Any]:
    """Narrate ``n_alerts`` window alerts with the template backend and score them."""
    from explain.backends import TemplateBackend
    from explain.evaluate import Scored, pick_alerts, summarize
    from explain.explainer import AlertExplainer
    from explain.narrator import Narrator

    scores = window.scored["score"].to_numpy(dtype=np.float64)
    threshold = float(bundle.threshold.threshold)
    rows = pick_alerts(scores, threshold, n_alerts)
    scored = Scored(window.scored, window.X, scores, dict(bundle.families))
    explainer = AlertExplainer(bundle, family_of=scored.family_of, narrative_top_k=top_k).setup()
    cards = explainer.cards(scored.transactions(rows), scored.X[rows], scores=scores[rows])
    narrator = Narrator(TemplateBackend(), audit=None, narrative_top_k=top_k).setup()
    start = time.perf_counter()
    try:
        results = narrator.narrate_detailed(cards)
    finally:
        narrator.close()
    summary = summarize(results, wall_s=time.perf_counter() - start)
    examples = [{"alert_id": r.card.alert_id, "score": r.card.score, "reasons": [c.feature for c in r.card.reasons[:top_k]],
                 "narrative": r.card.narrative.text, "checks_passed": not r.fallback_used} for r in results[:3]]
    return {"backend": "template", "n_requested": n_alerts, "n_alerts_in_window": int((scores >= threshold).sum()),
            "top_k": top_k, **summary, "examples": examples}


def explanation_section(sample: ShapSample, families: dict[str, str], audit: dict[str, Any] | None, *,
                        n_dependence: int = N_DEPENDENCE) -> dict[str, Any]:
    importance = sample.importance()
    return {
        "method": "shap.TreeExplainer on the booster, log-odds; mean |SHAP| over a random sample of the window",
        "sample_rows": int(sample.rows.size),
        "base_value": sample.base_value,
        "additivity_checked": True,
        "global_importance": [{"feature": name, "mean_abs_shap": value, "family": families.get(name)}
                              for name, value in importance],
        "dependence_features": [name for name, _ in importance[:n_dependence]],
        "faithfulness": audit,
    }
