"""Explanations investigators and validators can trust.

SHAP attributions (:class:`Attribution`, :class:`TreeAttributor`), reason codes
(:func:`reason_codes`, one catalogue for every feature), what-if facts found by
re-scoring, versioned :class:`AlertCard`\\ s with masked PII, narratives by a
local or remote language model behind :class:`NarrativeBackend`, grounding checks
on every model output with a template fallback, faithfulness metrics and an
append-only audit trail.

Hot path (streaming)::

    explainer = AlertExplainer.from_settings(bundle, settings.narrative).setup()
    cards = explainer.cards(transactions, X, scores=scores)          # template narratives
    worker = NarrativeWorker(Narrator.from_settings(settings.narrative), on_ready=store.update).start()
    for card in cards:
        worker.submit(card)                                          # never blocks
"""

from __future__ import annotations

from explain.attribution import Attribution, Contribution, TreeAttributor
from explain.audit import AuditLog
from explain.backends import (
    DecodingParams,
    Generation,
    NarrativeBackend,
    OpenAIBackend,
    TemplateBackend,
    TransformersBackend,
    make_backend,
)
from explain.card import (
    CARD_SCHEMA_VERSION,
    AlertCard,
    Narrative,
    alert_card_schema,
    build_alert_card,
)
from explain.checks import CheckReport, GroundingChecker
from explain.errors import (
    AdditivityError,
    ExplainError,
    FeatureMismatchError,
    NarrativeBackendError,
    UnknownFeatureError,
)
from explain.explainer import AlertExplainer
from explain.facts import FactSheet
from explain.faithfulness import Faithfulness, score_faithfulness
from explain.narrator import NarrationResult, Narrator
from explain.patterns import RULES, match_pattern
from explain.plan import NarrativePlan, PatternHypothesis, build_plan
from explain.reasons import CATALOGUE, ReasonCode, reason_codes
from explain.settings import NarrativeSettings
from explain.whatif import WhatIf, what_ifs, what_ifs_many
from explain.worker import NarrativeWorker

__all__ = [
    "CARD_SCHEMA_VERSION",
    "CATALOGUE",
    "AdditivityError",
    "AlertCard",
    "AlertExplainer",
    "Attribution",
    "AuditLog",
    "CheckReport",
    "Contribution",
    "DecodingParams",
    "ExplainError",
    "FactSheet",
    "FeatureMismatchError",
    "Faithfulness",
    "Generation",
    "GroundingChecker",
    "NarrationResult",
    "Narrative",
    "NarrativeBackend",
    "NarrativeBackendError",
    "NarrativePlan",
    "NarrativeSettings",
    "NarrativeWorker",
    "Narrator",
    "OpenAIBackend",
    "PatternHypothesis",
    "RULES",
    "ReasonCode",
    "TemplateBackend",
    "TransformersBackend",
    "TreeAttributor",
    "UnknownFeatureError",
    "WhatIf",
    "alert_card_schema",
    "build_alert_card",
    "build_plan",
    "make_backend",
    "match_pattern",
    "reason_codes",
    "score_faithfulness",
    "what_ifs",
    "what_ifs_many",
]
