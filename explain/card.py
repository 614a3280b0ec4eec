"""The alert card: a versioned JSON document an investigator reads and a validator can replay.

:func:`build_alert_card` is pure and fast (no model call beyond what it is handed):
the streaming service calls it on the hot path, with the deterministic template
narrative; the narrative worker later replaces the narrative with a checked
model-written one (:mod:`explain.narrator`). ``AlertCard.model_json_schema()`` is the
published schema (``explain/alert_card.schema.json``); ``schema_version`` changes
whenever it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from explain.attribution import Attribution
from explain.codes import card_currency, normal_country, normal_mcc
from explain.facts import FactSheet
from explain.formatting import count, duration, km, money
from explain.masking import customer_ref, mask_tail
from explain.plan import NarrativePlan, build_plan, useful_what_ifs
from explain.reasons import FAMILY_OF, ReasonCode, reason_codes
from explain.whatif import WhatIf
from features.schema import KNOWN_CHANNELS, Transaction

CARD_SCHEMA_VERSION: Final = "1.0"

NarrativeStatus = Literal["template", "generated", "fallback"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MaskedTransaction(_Frozen):
    """Transaction facts with PII masked: no full card/device/customer ids, no coordinates."""

    transaction_id: str
    timestamp: datetime
    amount: float
    currency: str
    card: str = Field(description="Last four characters of the card id, e.g. ****1234.")
    merchant_id: str
    mcc: str | None = None
    channel: str | None = None
    country: str | None = None
    device: str | None = Field(None, description="Last four characters of the device id.")
    customer_ref: str | None = Field(None, description="Keyed hash of the customer id; absent without a key.")

    # The coded fields reach the fact sheet and a model's prompt: only codes of their vocabularies
    # are kept, whatever a feed or a stored card holds (a card read back is normalised the same way).
    @field_validator("mcc", mode="before")
    @classmethod
    def _mcc_code(cls, value: object) -> str | None:
        return normal_mcc(value)

    @field_validator("country", mode="before")
    @classmethod
    def _country_code(cls, value: object) -> str | None:
        return normal_country(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_code(cls, value: object) -> str:
        return card_currency(value, None)

    @field_validator("channel", mode="before")
    @classmethod
    def _known_channel(cls, value: object) -> str | None:
        return value if isinstance(value, str) and value in KNOWN_CHANNELS else None


class CardHistory(_Frozen):
    """The card's recent history, as the features saw it (earlier transactions only)."""

    tx_count_24h: int | None = None
    tx_count_7d: int | None = None
    tx_count_30d: int | None = None
    amount_mean_30d: float | None = None
    amount_max_30d: float | None = None
    seconds_since_prev_tx: float | None = None
    km_from_prev_tx: float | None = None
    summary: str


class NarrativeProvenance(_Frozen):
    """Where a narrative came from, so that a validator can replay it from the audit log."""

    backend: str
    model_id: str
    prompt_hash: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    latency_ms: float = 0.0
    attempts: int = 0
    checks: dict[str, bool] = Field(default_factory=dict)
    failed_checks: list[str] = Field(default_factory=list)
    fallback_used: bool = False
    verifier: str | None = Field(
        None, description="Version of the closed-world verifier the text passed (explain.checks.VERIFIER_VERSION); "
                          "absent when no verifier passed it.")
    generated_at: datetime


class Narrative(_Frozen):
    """The text shown on the card. ``generated`` (shown as model-written and verified) only with every check passed."""

    text: str
    status: NarrativeStatus
    provenance: NarrativeProvenance

    @model_validator(mode="after")
    def _generated_means_verified(self) -> Narrative:
        p = self.provenance
        if self.status == "generated" and not (p.checks and all(p.checks.values()) and not p.failed_checks
                                               and not p.fallback_used):
            raise ValueError("a narrative is 'generated' only when it passed every check of the verifier; "
                             f"checks {p.checks}, failed {p.failed_checks}")
        return self


class CardProvenance(_Frozen):
    """How the card's numbers were produced."""

    model_version: str
    explainer: str = "shap.TreeExplainer"
    attribution_space: str = "log-odds"
    base_value: float
    margin: float
    shap_version: str | None = None
    xgboost_version: str | None = None
    card_schema_version: str = CARD_SCHEMA_VERSION


class AlertCard(_Frozen):
    """One alert, explained. Versioned by ``schema_version``."""

    schema_version: Literal["1.0"] = CARD_SCHEMA_VERSION
    alert_id: str
    created_at: datetime
    transaction: MaskedTransaction
    score: float
    threshold: float
    decision: str
    model_version: str
    anomaly_score: float | None = None
    reasons: list[ReasonCode]
    family_contributions: dict[str, float]
    what_if: list[WhatIf] = Field(default_factory=list)
    history: CardHistory
    narrative: Narrative
    provenance: CardProvenance
    plan: NarrativePlan | None = Field(None, description="The narrative plan (pattern hypothesis, comparisons with "
                                                         "the card's normal); absent on cards stored before plans.")

    def facts(self, *, narrative_top_k: int = 3) -> FactSheet:
        """The masked fact sheet a narrative is written from and checked against."""
        return FactSheet.build(
            transaction=self.transaction, score=self.score, threshold=self.threshold, decision=self.decision,
            reasons=self.reasons, what_if=self.what_if, history_summary=self.history.summary,
            narrative_top_k=narrative_top_k, plan=self.plan,
        )

    def with_narrative(self, narrative: Narrative) -> AlertCard:
        return self.model_copy(update={"narrative": narrative})


def alert_card_schema() -> dict[str, Any]:
    """The JSON schema of :class:`AlertCard` (the published, versioned contract)."""
    return AlertCard.model_json_schema()


def mask_transaction(tx: Transaction, *, currency: str, customer_hash_key: bytes | None = None) -> MaskedTransaction:
    return MaskedTransaction(
        transaction_id=tx.transaction_id,
        timestamp=tx.timestamp,
        amount=float(tx.amount),
        currency=card_currency(tx.currency, currency),
        card=mask_tail(tx.card_id) or "****",
        merchant_id=tx.merchant_id,
        mcc=normal_mcc(tx.mcc),
        channel=tx.channel,
        country=normal_country(tx.country),
        device=mask_tail(tx.device_id),
        customer_ref=customer_ref(tx.customer_id, customer_hash_key),
    )


def card_history(values: Mapping[str, float], currency: str) -> CardHistory:
    """Summary of the card's recent history from its velocity, recency and geo features."""

    def get(name: str) -> float | None:
        value = values.get(name)
        return None if value is None or math.isnan(value) else float(value)

    c24, c7, c30 = get("card_tx_count_24h"), get("card_tx_count_7d"), get("card_tx_count_30d")
    mean30, max30 = get("card_amount_mean_30d"), get("card_amount_max_30d")
    since, dist = get("seconds_since_prev_tx"), get("km_from_prev_tx")
    parts = []
    counts = [(c, span) for c, span in ((c24, "24 hours"), (c7, "7 days"), (c30, "30 days")) if c is not None]
    if counts:
        parts.append("earlier transactions: " + ", ".join(f"{count(c)} in {span}" for c, span in counts))
    if mean30 is not None:
        parts.append(f"30-day average {money(mean30, currency)}")
    if max30 is not None:
        parts.append(f"30-day largest {money(max30, currency)}")
    if since is not None:
        parts.append(f"previous transaction {duration(since)} earlier")
    else:
        parts.append("no previous transaction on record")
    if dist is not None:
        parts.append(f"{km(dist)} away")
    return CardHistory(
        tx_count_24h=None if c24 is None else int(c24), tx_count_7d=None if c7 is None else int(c7),
        tx_count_30d=None if c30 is None else int(c30), amount_mean_30d=mean30, amount_max_30d=max30,
        seconds_since_prev_tx=since, km_from_prev_tx=dist, summary="; ".join(parts),
    )


def build_alert_card(
    tx: Transaction,
    attribution: Attribution,
    *,
    score: float,
    threshold: float,
    decision: str | None = None,
    anomaly_score: float | None = None,
    family_of: Mapping[str, str] | None = None,
    what_if: Sequence[WhatIf] = (),
    reasons: Sequence[ReasonCode] | None = None,
    top_k: int = 5,
    narrative_top_k: int = 3,
    currency: str = "EUR",
    customer_hash_key: bytes | None = None,
    now: datetime | None = None,
) -> AlertCard:
    """An alert card with the template narrative; fast enough for the scoring hot path.

    ``attribution`` is the single-row attribution of ``tx`` (already checked for
    additivity by :class:`~explain.attribution.TreeAttributor`). ``currency`` is used
    when the transaction has none. ``reasons`` are its reason codes when the caller already
    has them (computed with the same ``top_k``, currency and families); else they are computed here.
    """
    if attribution.is_batch:
        raise TypeError("build_alert_card takes one transaction's attribution: index the batch, e.g. attribution[i]")
    currency = card_currency(tx.currency, currency)
    families = family_of or FAMILY_OF
    if reasons is None:
        reasons = reason_codes(attribution, top_k=top_k, currency=currency, family_of=families)
    grouped = attribution.group(families)
    values = dict(zip(attribution.feature_names, map(float, attribution.feature_values), strict=True))
    masked = mask_transaction(tx, currency=currency, customer_hash_key=customer_hash_key)
    history = card_history(values, currency)
    decision = decision or ("alert" if score >= threshold else "pass")
    # A what-if to an amount of 0.00, or one that leaves the decision as it is, tells an investigator nothing.
    what_if = useful_what_ifs(what_if)
    plan = build_plan(values, reasons, what_if, contributions=dict(zip(attribution.feature_names,
                                                                       map(float, attribution.values), strict=True)),
                      margin=float(attribution.margin), currency=currency, mcc=masked.mcc, channel=masked.channel,
                      history=history.summary)
    facts = FactSheet.build(transaction=masked, score=score, threshold=threshold, decision=decision, reasons=reasons,
                            what_if=what_if, history_summary=history.summary, narrative_top_k=narrative_top_k,
                            plan=plan)
    created = now or datetime.now(UTC)
    versions = _library_versions()
    return AlertCard(
        alert_id=f"{attribution.model_version}:{tx.transaction_id}",
        created_at=created,
        transaction=masked,
        score=float(score),
        threshold=float(threshold),
        decision=decision,
        model_version=attribution.model_version,
        anomaly_score=None if anomaly_score is None else float(anomaly_score),
        reasons=list(reasons),
        family_contributions={name: float(v) for name, v in zip(grouped.feature_names, grouped.values, strict=True)},
        what_if=list(what_if),
        history=history,
        narrative=template_narrative(facts, now=created),
        provenance=CardProvenance(
            model_version=attribution.model_version, base_value=attribution.base_value,
            margin=float(attribution.margin), shap_version=versions["shap"], xgboost_version=versions["xgboost"],
        ),
        plan=plan,
    )


def template_narrative(facts: FactSheet, *, now: datetime | None = None, status: NarrativeStatus = "template",
                       failed_checks: Sequence[str] = (), attempts: int = 0, latency_ms: float = 0.0) -> Narrative:
    """The deterministic narrative written from the fact sheet (also the fallback of every model)."""
    return Narrative(
        text=facts.template_text(),
        status=status,
        provenance=NarrativeProvenance(
            backend="template", model_id="template-v1", prompt_hash=None, params={}, latency_ms=latency_ms,
            attempts=attempts, checks={}, failed_checks=list(failed_checks), fallback_used=status == "fallback",
            generated_at=now or datetime.now(UTC),
        ),
    )


_VERSIONS: dict[str, str | None] = {}


def _library_versions() -> dict[str, str | None]:
    if not _VERSIONS:
        from importlib.metadata import PackageNotFoundError, version

        for key, dist in (("shap", "shap"), ("xgboost", "xgboost-cpu")):
            try:
                _VERSIONS[key] = version(dist)
            except PackageNotFoundError:
                try:
                    _VERSIONS[key] = version(dist.removesuffix("-cpu"))
                except PackageNotFoundError:
                    _VERSIONS[key] = None
    return dict(_VERSIONS)
