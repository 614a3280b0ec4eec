"""Pattern hypotheses: which known fraud pattern an alert's evidence resembles, as readable rules.

Each :class:`PatternRule` is a plain condition over the card's own feature values (the
features the model was given for this transaction), written out in ``rule`` so that a
validator can read and re-check it. The rules are tried in :data:`RULES` order and the
first that holds names the hypothesis; none holding gives ``"none"``. A hypothesis says
what the evidence *resembles*, never what the payment *is*.

>>> match_pattern({"kmh_from_prev_tx": 2400.0, "km_from_prev_tx": 1600.0, "seconds_since_prev_tx": 2400.0})
'impossible_travel'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

PatternName = Literal[
    "impossible_travel", "card_testing", "account_takeover", "compromised_merchant", "out_of_pattern_amount", "none",
]

#: How each pattern is named in the text an investigator reads.
PATTERN_TITLES: Final[dict[str, str]] = {
    "card_testing": "card testing",
    "account_takeover": "account takeover",
    "impossible_travel": "a card used far from its previous location (impossible travel)",
    "compromised_merchant": "a compromised merchant",
    "out_of_pattern_amount": "an out-of-pattern amount",
    "none": "no known fraud pattern",
}
#: The simulator's scenario label each pattern stands for (features.simulation.fraud); "" is no fraud.
SCENARIO_OF_PATTERN: Final[dict[str, str]] = {
    "card_testing": "card_testing",
    "account_takeover": "account_takeover",
    "impossible_travel": "skimmed_card",
    "compromised_merchant": "compromised_merchant",
    "out_of_pattern_amount": "high_amount",
    "none": "",
}

# Thresholds of the rules (tuned on a window apart from the one bench/bench_patterns.py reports).
TESTING_MIN_EARLIER: Final = 2  # earlier payments on the card in the last hour (one, when this payment is small too)
TESTING_SMALL_AMOUNT: Final = 5.0  # the largest of them, in the card's currency
TRAVEL_MIN_KMH: Final = 900.0  # faster than an airliner's cruising speed
TRAVEL_MIN_KM: Final = 500.0
TRAVEL_MAX_GAP_S: Final = 6 * 3600.0
TAKEOVER_MIN_RATIO: Final = 3.0  # the amount against the card's 30-day average
MERCHANT_MIN_RATE: Final = 0.05  # share of the merchant's labelled transactions that were fraud (30 days)
MERCHANT_MIN_FRAUDS: Final = 3
AMOUNT_MIN_RATIO: Final = 8.0
ECOMMERCE_CODE: Final = 1  # features.families.channel_mcc's codes (explain.formatting.CHANNEL_NAMES)
ATM_CODE: Final = 2


def _get(values: Mapping[str, float], name: str) -> float:
    value = values.get(name)
    return math.nan if value is None else float(value)


def _at_least(values: Mapping[str, float], name: str, floor: float) -> bool:
    value = _get(values, name)
    return not math.isnan(value) and value >= floor


def _small(v: Mapping[str, float], name: str) -> bool:
    value = _get(v, name)
    return not math.isnan(value) and value <= TESTING_SMALL_AMOUNT


def _card_testing(v: Mapping[str, float]) -> bool:
    burst = _at_least(v, "card_tx_count_1h", TESTING_MIN_EARLIER) or (
        _at_least(v, "card_tx_count_1h", 1) and _small(v, "amount"))
    return burst and _small(v, "card_amount_max_1h") and _get(v, "is_new_merchant") == 1.0


def _impossible_travel(v: Mapping[str, float]) -> bool:
    gap = _get(v, "seconds_since_prev_tx")
    return (_at_least(v, "kmh_from_prev_tx", TRAVEL_MIN_KMH) and _at_least(v, "km_from_prev_tx", TRAVEL_MIN_KM)
            and not math.isnan(gap) and gap <= TRAVEL_MAX_GAP_S)


def _account_takeover(v: Mapping[str, float]) -> bool:
    return (_get(v, "is_new_device") == 1.0 and _get(v, "channel_code") == ECOMMERCE_CODE
            and _get(v, "is_new_country") == 1.0 and _at_least(v, "amount_to_mean_30d", TAKEOVER_MIN_RATIO))


def _compromised_merchant(v: Mapping[str, float]) -> bool:
    # A compromised merchant hits its own regular customers: the card has paid there before.
    return (_at_least(v, "merchant_fraud_rate_30d", MERCHANT_MIN_RATE)
            and _at_least(v, "merchant_known_frauds_30d", MERCHANT_MIN_FRAUDS) and _get(v, "is_new_merchant") == 0.0)


def _out_of_pattern_amount(v: Mapping[str, float]) -> bool:
    # A lone purchase: cash far above the card's normal resembles a cloned card's withdrawals, and a big amount
    # inside a burst of payments resembles what follows a test or a takeover more than a one-off purchase.
    return (_at_least(v, "amount_to_mean_30d", AMOUNT_MIN_RATIO) and _get(v, "channel_code") != ATM_CODE
            and _get(v, "card_tx_count_1h") == 0.0)


@dataclass(frozen=True)
class PatternRule:
    """One pattern as a condition over feature values, with the condition written out."""

    pattern: PatternName
    rule: str
    holds: Callable[[Mapping[str, float]], bool]


#: The rules, most specific first: the first that holds names the hypothesis.
RULES: Final[tuple[PatternRule, ...]] = (
    PatternRule("impossible_travel",
                f"implied travel speed from the previous transaction >= {TRAVEL_MIN_KMH:.0f} km/h, distance >= "
                f"{TRAVEL_MIN_KM:.0f} km, previous transaction <= {TRAVEL_MAX_GAP_S / 3600:.0f} hours earlier",
                _impossible_travel),
    PatternRule("card_testing",
                f">= {TESTING_MIN_EARLIER} earlier payments on the card in the last hour (or one, with this payment "
                f"<= {TESTING_SMALL_AMOUNT:.2f} too), the largest <= {TESTING_SMALL_AMOUNT:.2f} in the card's currency, "
                "at a merchant new to the card",
                _card_testing),
    PatternRule("account_takeover",
                f"new device, ecommerce, new country for the card, amount >= {TAKEOVER_MIN_RATIO:.0f}x the card's "
                "30-day average", _account_takeover),
    PatternRule("compromised_merchant",
                f"merchant fraud rate over 30 days >= {MERCHANT_MIN_RATE:.0%} with >= {MERCHANT_MIN_FRAUDS} fraud "
                "labels, at a merchant the card has paid before", _compromised_merchant),
    PatternRule("out_of_pattern_amount",
                f"amount >= {AMOUNT_MIN_RATIO:.0f}x the card's 30-day average, not a cash withdrawal (ATM), no "
                "earlier payment on the card in the last hour",
                _out_of_pattern_amount),
)
RULE_OF: Final[dict[str, PatternRule]] = {rule.pattern: rule for rule in RULES}


def match_pattern(values: Mapping[str, float]) -> PatternName:
    """The first pattern whose rule holds for these feature values, else ``"none"``."""
    return next((rule.pattern for rule in RULES if rule.holds(values)), "none")


def matching_patterns(values: Mapping[str, float]) -> list[PatternName]:
    """Every pattern whose rule holds, in rule order (for validators comparing rules)."""
    return [rule.pattern for rule in RULES if rule.holds(values)]
