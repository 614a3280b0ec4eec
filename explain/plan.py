"""The narrative plan: what an alert's narrative says, chosen deterministically from the card's facts.

:func:`build_plan` turns one transaction's feature values, reason codes and what-ifs into a
:class:`NarrativePlan`, a frozen JSON value object stored on the alert card:

* a pattern hypothesis (:mod:`explain.patterns`): the known pattern the evidence *resembles*
  and the facts that support it;
* evidence as comparisons with the card's own normal ("the amount 2,450.00 EUR is 12.3× this
  card's 30-day average of 199.10 EUR");
* counter-evidence (the reasons that lower risk), the recent history, and the what-ifs that
  say something (a what-if to an amount of 0.00, or one that leaves the decision unchanged, is dropped);
* the reasons in investigator units: each contribution as a share of the total push toward or
  away from fraud and as score points, never log-odds or feature identifiers.

The template narrative is written from the plan (:meth:`NarrativePlan.narrative`), and the
closed-world verifier's licence takes the plan's statements (:func:`explain.licence.licence_from_facts`),
each number bound to the fact it is about, so a model text saying the same things passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from explain.formatting import FactFormatter, mcc_label
from explain.patterns import PATTERN_TITLES, RULE_OF, PatternName, match_pattern
from explain.reading import mentions
from explain.reasons import ReasonCode
from explain.whatif import WhatIf

PLAN_VERSION: Final = "plan-v1"
#: Most words of a template narrative (the verifier allows 140): optional parts are dropped to fit.
MAX_NARRATIVE_WORDS: Final = 130
# A location-based reason under this many km (or km/h) is no travel at all: never stated as a risk factor.
_NO_TRAVEL: Final = 1.0
_WINDOW_S: Final = {"1h": 3600.0, "24h": 86400.0, "30d": 2592000.0}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanNumber(_Frozen):
    """A number a plan statement states, with what it is about (as the verifier's licence reads it)."""

    value: float
    unit: str
    subject: str
    window: float | None = Field(None, description="Look-back window in seconds, for per-window facts.")
    currency: str | None = None


class PlanStatement(_Frozen):
    """One statement of the plan: its text and the numbers in it."""

    text: str
    numbers: list[PlanNumber] = Field(default_factory=list)


class PatternHypothesis(_Frozen):
    """The known pattern the evidence resembles (``none`` when no rule holds), and why."""

    pattern: PatternName
    title: str
    rule: str = Field(description="The rule that held, as a validator reads it; empty for 'none'.")
    support: list[PlanStatement] = Field(default_factory=list)
    text: str


class ReasonView(_Frozen):
    """One reason in investigator units."""

    label: str = Field(description="The factor's everyday name.")
    text: str
    direction: Literal["raises", "lowers"]
    share: float = Field(description="Share of the total push in its direction (0-1).")
    points: float = Field(description="Score points this contribution adds (negative: removes), 0-100 scale.")
    units_text: str


class NarrativePlan(_Frozen):
    """What a narrative about one alert says, in order; JSON-serialisable, stored on the card."""

    plan_version: Literal["plan-v1"] = PLAN_VERSION
    pattern: PatternHypothesis
    evidence: list[PlanStatement] = Field(default_factory=list)
    counter_evidence: list[PlanStatement] = Field(default_factory=list)
    history: str = ""
    what_if: list[str] = Field(default_factory=list)
    reasons: list[ReasonView] = Field(default_factory=list)
    merchant_category: str | None = Field(None, description="MCC with its name, e.g. '5732 (Electronics stores)'.")
    left_out: list[str] = Field(default_factory=list, description="Reasons (features) left out of the texts because "
                                                                  "they read as nonsense, e.g. a speed of 0 km/h.")
    values: dict[str, str] = Field(default_factory=dict, description="Worded facts the plan states "
                                                                     "(merchant/device/country: new or known).")

    def numbers(self) -> list[PlanNumber]:
        statements = [*self.pattern.support, *self.evidence, *self.counter_evidence]
        return [n for s in statements for n in s.numbers]

    def states(self, feature: str) -> bool:
        """Whether the hypothesis or the comparisons already state this feature's number (same fact and window)."""
        subject = _subject_of(feature)
        window = _WINDOW_S.get(feature.rsplit("_", 1)[-1])
        return subject not in ("any", "amount") and any(n.subject == subject and n.window == window
                                                         for n in self.numbers())

    def lines(self) -> list[str]:
        """The plan's lines in the fact sheet (what a model is shown)."""
        out = [f"Pattern hypothesis: {self.pattern.text}"]
        if self.evidence:
            out.append("Compared with the card's normal: " + "; ".join(s.text for s in self.evidence) + ".")
        if self.counter_evidence:
            out.append("Counter-evidence: " + "; ".join(s.text for s in self.counter_evidence) + ".")
        return out

    def narrative(self, headline: str, main_reasons: Sequence[str]) -> str:
        """The template narrative: pattern hypothesis, headline, comparisons, reasons, counter-evidence, what-if.

        Optional parts are dropped (what-if, then the later comparisons and counter-evidence) until it
        fits :data:`MAX_NARRATIVE_WORDS`; the pattern, headline and main reasons always stay.
        """
        evidence = [s.text for s in self.evidence]
        counter = [s.text for s in self.counter_evidence]
        what_if = list(self.what_if[:1])

        def assemble() -> str:
            parts = [self.pattern.text, headline]
            if evidence:
                parts.append("Compared with the card's normal: " + "; ".join(evidence) + ".")
            if main_reasons:
                parts.append("Main reasons: " + "; ".join(main_reasons) + ".")
            if counter:
                parts.append("Counter-evidence: " + "; ".join(counter) + ".")
            if what_if:
                parts.append(f"Model check: {what_if[0]}.")
            return " ".join(parts)

        text = assemble()
        for trim in (what_if, evidence, counter, evidence, counter):
            if len(text.split()) <= MAX_NARRATIVE_WORDS:
                break
            if trim:
                trim.pop()
                text = assemble()
        return text


def sensible(reason: ReasonCode) -> bool:
    """False for a reason that reads as nonsense to an investigator: a travel speed or distance of about 0
    (no travel at all) stated as a factor moving the risk."""
    if reason.feature in ("kmh_from_prev_tx", "km_from_prev_tx"):
        return reason.feature_value is None or reason.feature_value >= _NO_TRAVEL
    return True


def useful_what_ifs(what_if: Sequence[WhatIf]) -> list[WhatIf]:
    """What-ifs that say something: the decision changes, and never to an amount of 0.00."""
    return [w for w in what_if if w.under_threshold and not (w.feature == "amount" and round(w.new_value, 2) <= 0.0)]


def build_plan(
    values: Mapping[str, float],
    reasons: Sequence[ReasonCode],
    what_if: Sequence[WhatIf] = (),
    *,
    contributions: Mapping[str, float] | None = None,
    margin: float | None = None,
    currency: str = "EUR",
    mcc: object = None,
    channel: str | None = None,
    history: str = "",
) -> NarrativePlan:
    """The narrative plan of one alert.

    ``values`` are the transaction's feature values (NaN: missing), ``contributions`` its SHAP
    values by feature and ``margin`` the model's log-odds (both for the investigator units; without
    them the shares are computed over the reasons alone).
    """
    say = _Sayer(values, currency)
    pattern = match_pattern(values)
    support, plan_values = _support(pattern, say, channel)
    title = PATTERN_TITLES[pattern]
    if support:
        text = f"This payment resembles {title}: " + "; ".join(s.text for s in support) + "."
    else:
        text = "This payment resembles no known fraud pattern."
    hypothesis = PatternHypothesis(pattern=pattern, title=title, rule=RULE_OF[pattern].rule if pattern != "none" else "",
                                   support=support, text=text)
    kept = [r for r in reasons if sensible(r)]
    # A comparison the hypothesis already states is not said twice.
    stated = {n.subject for s in support for n in s.numbers} - {"amount"}
    evidence = [s for s in _comparisons(say) if not stated & {n.subject for n in s.numbers}]
    counter = [PlanStatement(text=r.text) for r in kept if r.direction == "lowers"][:2]
    return NarrativePlan(
        pattern=hypothesis,
        evidence=evidence,
        counter_evidence=counter,
        history=history,
        what_if=[w.text for w in useful_what_ifs(what_if)],
        reasons=_views(kept, contributions, margin),
        merchant_category=mcc_label(mcc),
        left_out=[r.feature for r in reasons if not sensible(r)],
        values=plan_values,
    )


#: Feature name prefix -> the subject its numbers are about (explain.licence's subjects).
_SUBJECTS: Final = {
    "card_tx_count": "tx_count", "card_amount_max": "max", "card_amount_mean": "mean",
    "amount_to_mean": "ratio_mean", "amount_to_max": "ratio_max", "merchant_fraud_rate": "fraud_rate",
    "merchant_known_labels": "labels", "merchant_known_frauds": "fraud_labels", "seconds_since_prev_tx": "since",
    "km_from_prev_tx": "distance", "kmh_from_prev_tx": "speed", "amount": "amount",
}


def _subject_of(feature: str) -> str:
    return next((s for prefix, s in _SUBJECTS.items() if feature.startswith(prefix)), "any")


class _Sayer:
    """Statements from templates over feature values, each number bound to its feature's subject and window."""

    def __init__(self, values: Mapping[str, float], currency: str) -> None:
        self.values = values
        self.formatter = FactFormatter(currency)

    def get(self, name: str) -> float | None:
        value = self.values.get(name)
        return None if value is None or math.isnan(float(value)) else float(value)

    def __call__(self, template: str, **fields: tuple[str, str]) -> PlanStatement | None:
        """``fields``: placeholder -> (feature, format kind); None when a feature is missing."""
        texts: dict[str, str] = {}
        numbers: list[PlanNumber] = []
        for key, (feature, kind) in fields.items():
            if "{" + key + "}" not in template:
                continue
            value = self.get(feature)
            if value is None:
                return None
            texts[key] = self.formatter.format_field(value, kind)
            subject = _subject_of(feature)
            window = _WINDOW_S.get(feature.rsplit("_", 1)[-1])
            for m in mentions(texts[key]):
                unit = m.unit
                if subject in ("tx_count", "labels", "fraud_labels") and unit in ("plain", "count"):
                    unit = "count"
                numbers.append(PlanNumber(value=m.value, unit=unit, subject=subject, window=window,
                                          currency=m.currency))
        return PlanStatement(text=template.format(**texts), numbers=numbers)


def _support(pattern: PatternName, say: _Sayer, channel: str | None) -> tuple[list[PlanStatement], dict[str, str]]:
    found: list[PlanStatement | None] = []
    values: dict[str, str] = {}
    if pattern == "card_testing":
        # "one" in words: a lone "1 earlier payment" would read as a number about the time before.
        burst = ("one earlier payment on this card in the last 1 hour, of {top}" if say.get("card_tx_count_1h") == 1
                 else "{n} earlier payments on this card in the last 1 hour, the largest {top}")
        found = [say(burst, n=("card_tx_count_1h", "count"), top=("card_amount_max_1h", "money")),
                 say("this payment of {amount} at a new merchant for this card", amount=("amount", "money"))]
        values["merchant"] = "new"
    elif pattern == "impossible_travel":
        found = [say("{km} from the previous transaction's location, {gap} after it, an implied travel speed of {kmh}",
                     km=("km_from_prev_tx", "km"), gap=("seconds_since_prev_tx", "duration"),
                     kmh=("kmh_from_prev_tx", "kmh"))]
    elif pattern == "account_takeover":
        kind = "an ecommerce payment" if channel == "ecommerce" else "a payment"
        found = [PlanStatement(text="a new device for this card"), PlanStatement(text="a new country for this card"),
                 say(kind + " of {amount}, {ratio} this card's 30-day average of {mean}", amount=("amount", "money"),
                     ratio=("amount_to_mean_30d", "ratio"), mean=("card_amount_mean_30d", "money"))]
        values.update(device="new", country="new")
    elif pattern == "compromised_merchant":
        found = [say("the merchant's fraud rate over 30 days is {rate}, {frauds} fraud labels among {labels} labelled "
                     "transactions", rate=("merchant_fraud_rate_30d", "percent"),
                     frauds=("merchant_known_frauds_30d", "count"), labels=("merchant_known_labels_30d", "count"))]
    elif pattern == "out_of_pattern_amount":
        found = [say("the amount {amount} is {ratio} this card's 30-day average of {mean}", amount=("amount", "money"),
                     ratio=("amount_to_mean_30d", "ratio"), mean=("card_amount_mean_30d", "money"))]
    return [s for s in found if s is not None], values


def _comparisons(say: _Sayer) -> list[PlanStatement]:
    """The transaction against the card's own normal, where the card has one."""
    ratio = say.get("amount_to_mean_30d")
    # Under the average, a share reads better than a ratio that rounds to "0.0×".
    found = [say("the amount {amount} is {ratio} this card's 30-day average of {mean}" if ratio is None or ratio >= 1
                 else "the amount {amount} is {ratio} of this card's 30-day average of {mean}",
                 amount=("amount", "money"), ratio=("amount_to_mean_30d", "ratio" if ratio is None or ratio >= 1
                                                    else "percent"),
                 mean=("card_amount_mean_30d", "money"))]
    ratio_max = say.get("amount_to_max_30d")
    mean, top = say.get("card_amount_mean_30d"), say.get("card_amount_max_30d")
    # The largest amount adds nothing when it is the average (a single earlier payment).
    if ratio_max is not None and ratio_max > 1.0 and not (mean is not None and top is not None
                                                          and round(mean, 2) == round(top, 2)):
        found.append(say("the amount is {ratio} this card's largest amount in 30 days of {top}", ratio=("amount_to_max_30d", "ratio"),
                         top=("card_amount_max_30d", "money")))
    recent = say.get("card_tx_count_24h")
    if recent is not None and recent >= 3:
        found.append(say("{n} earlier payments on this card in the last 24 hours", n=("card_tx_count_24h", "count")))
    return [s for s in found if s is not None]


def _views(reasons: Sequence[ReasonCode], contributions: Mapping[str, float] | None,
           margin: float | None) -> list[ReasonView]:
    pool = dict(contributions) if contributions else {r.feature: r.shap_value for r in reasons}
    up = sum(v for v in pool.values() if v > 0)
    down = -sum(v for v in pool.values() if v < 0)
    out = []
    for r in reasons:
        total = up if r.shap_value >= 0 else down
        share = abs(r.shap_value) / total if total > 0 else 0.0
        points = 0.0 if margin is None else 100 * (_sigmoid(margin) - _sigmoid(margin - r.shap_value))
        toward = "toward" if r.direction == "raises" else "away from"
        out.append(ReasonView(
            label=r.concept, text=r.text.rsplit(" — ", 1)[0], direction=r.direction, share=round(share, 4),
            points=round(points, 2), units_text=f"{100 * share:.0f}% of the push {toward} fraud"))
    return out


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
