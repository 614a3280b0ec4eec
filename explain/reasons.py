"""Reason codes: each top-contributing feature as a sentence with its real numbers and direction.

One catalogue (:data:`CATALOGUE`) maps every model feature to a template, the
feature family it belongs to and the *concept* (the factor's everyday name) that
the grounding checks look for in narratives. A test proves that every feature the
pipeline can produce has an entry.

>>> reason_codes(attribution, top_k=3, currency="EUR")[0].text   # doctest: +SKIP
'amount 2,450.00 EUR is 12.3× this card's 30-day average (199.10 EUR) — raises risk'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from explain.attribution import Attribution
from explain.errors import UnknownFeatureError
from explain.formatting import FactFormatter, fields_of

Direction = Literal["raises", "lowers"]

WINDOWS: dict[str, str] = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}


@dataclass(frozen=True)
class ReasonTemplate:
    """How one feature is put into words.

    ``text`` is a :class:`~explain.formatting.FactFormatter` template over feature
    values; flags use ``text`` for 1 and ``text_false`` for 0. ``missing`` is used
    when any field the text reads is missing. ``primary`` is the field whose number
    is the reason's value (None for flags, whose wording is their value).
    """

    feature: str
    family: str
    concept: str
    text: str
    missing: str
    primary: str | None
    text_false: str | None = None
    zero: str | None = None  # used when the value would be written as 0 and a 0 reads as nonsense ("0 km/h")

    @property
    def is_flag(self) -> bool:
        return self.text_false is not None


#: Everyday names of factors and the phrases that name them in free text.
#: Used by the grounding checks (a narrative may only name factors among its reasons)
#: and by faithfulness completeness (a reason counts as covered when named).
CONCEPT_PATTERNS: dict[str, tuple[str, ...]] = {
    "amount": (r"\bamounts?\b", r"\bspen[dt]\b", r"\bspending\b", r"\baverage\b", r"\blargest\b",
               r"\bmaximum\b", r"\bsum\b"),
    "transaction count": (r"\btransactions (?:in|over|during|within) the (?:last|past)\b",
                          r"\bnumber of (?:earlier |recent |previous )?transactions\b", r"\btransaction count\b",
                          r"\bvelocity\b", r"\b(?:earlier|recent) transactions\b"),
    "time since previous": (r"\btime since\b", r"\bsince the (?:previous|last|prior)\b",
                            r"\b(?:seconds|minutes|hours) (?:after|before)\b", r"\bfirst transaction seen\b",
                            r"\bquick succession\b"),
    "location": (r"\bkm\b", r"\bkm/h\b", r"\bdistance\b", r"\bspeed\b", r"\btravel\w*\b", r"\blocation\b",
                 r"\bkilomet\w+\b"),
    "new merchant": (r"\b(?:new|known|unfamiliar|familiar|unknown) merchant\b", r"\bmerchant novelty\b"),
    "new device": (r"\bdevices?\b",),
    "new country": (r"\bcountr(?:y|ies)\b", r"\babroad\b", r"\bforeign\b"),
    "merchant fraud rate": (r"\bfraud rates?\b", r"\bfraud labels?\b", r"\blabell?ed\b", r"\bfraud reports?\b",
                            r"\bmerchant risk\b"),
    "time of day": (r"\bhours? of (?:the )?day\b", r"\btime of day\b", r"\bnight\w*\b", r"\bdaytime\b",
                    r"\b\d{2}:\d{2}\b", r"\bo'clock\b"),
    "day of week": (r"\bday of the week\b", r"\bweekends?\b", r"\bweekdays?\b",
                    r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b"),
    "channel": (r"\bchannel\b", r"\bonline\b", r"\be-?commerce\b", r"\bcard-?present\b", r"\bin person\b",
                r"\batms?\b", r"\bcash machine\b"),
    "merchant category": (r"\bmerchant category\b", r"\bmcc\b", r"\bcategory code\b"),
}
_CONCEPT_RE: dict[str, re.Pattern[str]] = {
    name: re.compile("|".join(patterns), re.IGNORECASE) for name, patterns in CONCEPT_PATTERNS.items()
}


def concepts_in(text: str) -> set[str]:
    """Concepts (factor names) a piece of text mentions."""
    return {name for name, pattern in _CONCEPT_RE.items() if pattern.search(text)}


def _catalogue() -> dict[str, ReasonTemplate]:
    entries: list[ReasonTemplate] = []
    for w, span in WINDOWS.items():
        entries += [
            ReasonTemplate(f"card_tx_count_{w}", "card_velocity", "transaction count",
                           f"{{card_tx_count_{w}:count}} earlier transactions on this card in the last {span}",
                           f"no earlier transactions on this card in the last {span}", f"card_tx_count_{w}"),
            ReasonTemplate(f"card_amount_sum_{w}", "card_velocity", "amount",
                           f"{{card_amount_sum_{w}:money}} spent on this card in the last {span}",
                           f"nothing spent on this card in the last {span}", f"card_amount_sum_{w}"),
            ReasonTemplate(f"card_amount_mean_{w}", "card_velocity", "amount",
                           f"this card's average amount over the last {span} is {{card_amount_mean_{w}:money}}",
                           f"no average amount for this card over the last {span} (no history)",
                           f"card_amount_mean_{w}"),
            ReasonTemplate(f"card_amount_max_{w}", "card_velocity", "amount",
                           f"this card's largest amount in the last {span} is {{card_amount_max_{w}:money}}",
                           f"no largest amount for this card in the last {span} (no history)",
                           f"card_amount_max_{w}"),
        ]
    entries += [
        ReasonTemplate("amount", "amount_profile", "amount", "transaction amount {amount:money}",
                       "transaction amount unknown", "amount"),
        ReasonTemplate("amount_log1p", "amount_profile", "amount", "transaction amount {amount:money} (log scale)",
                       "transaction amount unknown", "amount"),
    ]
    for days, span in (("7d", "7-day"), ("30d", "30-day")):
        entries.append(ReasonTemplate(
            f"amount_to_mean_{days}", "amount_profile", "amount",
            f"amount {{amount:money}} is {{amount_to_mean_{days}:ratio}} this card's {span} average "
            f"({{card_amount_mean_{days}:money}})",
            f"amount {{amount:money}} with no {span} average for this card to compare", f"amount_to_mean_{days}"))
    entries += [
        ReasonTemplate("amount_to_max_30d", "amount_profile", "amount",
                       "amount {amount:money} is {amount_to_max_30d:ratio} this card's largest amount in 30 days "
                       "({card_amount_max_30d:money})",
                       "amount {amount:money} with no 30-day largest amount for this card to compare",
                       "amount_to_max_30d"),
        ReasonTemplate("seconds_since_prev_tx", "recency", "time since previous",
                       "{seconds_since_prev_tx:duration} since the previous transaction on this card",
                       "first transaction seen on this card", "seconds_since_prev_tx"),
        ReasonTemplate("km_from_prev_tx", "geo", "location",
                       "{km_from_prev_tx:km} from the previous transaction's location",
                       "no previous location to compare with", "km_from_prev_tx",
                       zero="same location as the previous transaction"),
        ReasonTemplate("kmh_from_prev_tx", "geo", "location",
                       "implied travel speed of {kmh_from_prev_tx:kmh} from the previous transaction's location",
                       "no previous location to compute a travel speed", "kmh_from_prev_tx",
                       zero="no travel since the previous transaction's location"),
        ReasonTemplate("is_new_merchant", "novelty", "new merchant", "new merchant for this card",
                       "merchant novelty unknown for this card", None, "known merchant for this card"),
        ReasonTemplate("is_new_device", "novelty", "new device", "new device for this card",
                       "no device id to compare with this card's devices", None, "known device for this card"),
        ReasonTemplate("is_new_country", "novelty", "new country", "new country for this card",
                       "no country to compare with this card's countries", None, "known country for this card"),
        ReasonTemplate("merchant_fraud_rate_30d", "merchant_risk", "merchant fraud rate",
                       "merchant fraud rate over 30 days {merchant_fraud_rate_30d:percent}",
                       "no fraud labels known for this merchant over 30 days", "merchant_fraud_rate_30d"),
        ReasonTemplate("merchant_fraud_rate_90d", "merchant_risk", "merchant fraud rate",
                       "merchant fraud rate over 90 days {merchant_fraud_rate_90d:percent}",
                       "no fraud labels known for this merchant over 90 days", "merchant_fraud_rate_90d"),
        ReasonTemplate("merchant_known_labels_30d", "merchant_risk", "merchant fraud rate",
                       "{merchant_known_labels_30d:count} labelled transactions at this merchant in 30 days",
                       "no labelled transactions at this merchant in 30 days", "merchant_known_labels_30d"),
        ReasonTemplate("merchant_known_frauds_30d", "merchant_risk", "merchant fraud rate",
                       "{merchant_known_frauds_30d:count} fraud labels at this merchant in 30 days",
                       "no fraud labels at this merchant in 30 days", "merchant_known_frauds_30d"),
        ReasonTemplate("hour_of_day", "calendar", "time of day", "time of day {hour_of_day:hour}",
                       "time of day unknown", "hour_of_day"),
        ReasonTemplate("day_of_week", "calendar", "day of week", "day of the week {day_of_week:weekday}",
                       "day of the week unknown", None),
        ReasonTemplate("is_weekend", "calendar", "day of week", "weekend transaction",
                       "day of the week unknown", None, "weekday transaction"),
        ReasonTemplate("is_night", "calendar", "time of day", "night-time transaction",
                       "time of day unknown", None, "daytime transaction"),
        ReasonTemplate("channel_code", "channel_mcc", "channel", "{channel_code:channel} channel",
                       "channel unknown", None),
        ReasonTemplate("mcc_code", "channel_mcc", "merchant category", "merchant category code {mcc_code:mcc}",
                       "merchant category code unknown", "mcc_code"),
    ]
    return {entry.feature: entry for entry in entries}


#: feature name -> template. Every feature a model can use must be here.
CATALOGUE: dict[str, ReasonTemplate] = _catalogue()
#: feature name -> family, as the catalogue knows it (the pipeline's ``family_of`` wins when given).
FAMILY_OF: dict[str, str] = {name: t.family for name, t in CATALOGUE.items()}


class ReasonCode(BaseModel):
    """One reason on an alert card."""

    model_config = ConfigDict(frozen=True)

    feature: str
    family: str
    concept: str
    feature_value: float | None
    shap_value: float
    direction: Direction
    text: str
    value_text: str | None = None


def template_for(feature: str) -> ReasonTemplate:
    try:
        return CATALOGUE[feature]
    except KeyError:
        raise UnknownFeatureError(
            f"feature {feature!r} has no reason template; add one to explain.reasons.CATALOGUE"
        ) from None


def render_reason(feature: str, values: Mapping[str, float], shap: float, *, currency: str,
                  family_of: Mapping[str, str] | None = None) -> ReasonCode:
    """The reason sentence for one feature, given the transaction's feature values and its SHAP value."""
    template = template_for(feature)
    formatter = FactFormatter(currency)
    own = values.get(feature, math.nan)
    if template.is_flag and not _missing(own):
        text = template.text if own >= 0.5 else str(template.text_false)
    else:
        text = template.text
    needed = fields_of(text)
    if _missing(own) or any(_missing(values.get(name, math.nan)) for name in needed):
        # The "missing" sentence may itself quote other facts (e.g. the amount); fill them in.
        missing_fields = fields_of(template.missing)
        if any(_missing(values.get(name, math.nan)) for name in missing_fields):
            body = f"{template.concept} not available for this transaction"
        else:
            body = formatter.format(template.missing, **{name: values[name] for name in missing_fields})
        value_text = None
    elif template.zero is not None and template.primary is not None and _written_as_zero(
            formatter.format_field(values[template.primary], _spec_of(text, template.primary))):
        body, value_text = template.zero, None
    else:
        body = formatter.format(text, **{name: values[name] for name in needed})
        value_text = None
        if template.primary is not None:
            spec = _spec_of(text, template.primary)
            value_text = formatter.format_field(values[template.primary], spec)
    direction: Direction = "raises" if shap >= 0 else "lowers"
    return ReasonCode(
        feature=feature,
        family=(family_of or FAMILY_OF).get(feature, template.family),
        concept=template.concept,
        feature_value=None if _missing(own) else float(own),
        shap_value=float(shap),
        direction=direction,
        text=f"{body} — {direction} risk",
        value_text=value_text,
    )


def reason_codes(attribution: Attribution, *, top_k: int = 5, currency: str = "EUR",
                 family_of: Mapping[str, str] | None = None) -> list[ReasonCode]:
    """The ``top_k`` reasons of one transaction's attribution, by decreasing |SHAP value|.

    Features with a zero contribution are never reasons.
    """
    values = dict(zip(attribution.feature_names, map(float, attribution.feature_values), strict=True))
    out = []
    for contribution in attribution.top(top_k):
        if contribution.value == 0.0:
            break
        out.append(render_reason(contribution.name, values, contribution.value, currency=currency,
                                 family_of=family_of))
    return out


def _written_as_zero(text: str) -> bool:
    return re.fullmatch(r"0(?:\.0+)?(?:\s.*)?", text) is not None


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _spec_of(text: str, field: str) -> str:
    match = re.search(r"\{" + re.escape(field) + r":([^}]*)\}", text)
    return match.group(1) if match else ""
