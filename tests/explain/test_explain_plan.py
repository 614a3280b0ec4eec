"""The narrative plan: pattern rules, comparisons with the card's normal, investigator units, the template from it."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from explain.card import AlertCard
from explain.checks import GroundingChecker
from explain.formatting import mcc_label, mcc_names
from explain.licence import licence_from_facts
from explain.patterns import (
    PATTERN_TITLES,
    RULES,
    SCENARIO_OF_PATTERN,
    match_pattern,
    matching_patterns,
)
from explain.plan import NarrativePlan, build_plan, useful_what_ifs
from explain.reasons import render_reason
from explain.whatif import WhatIf

DATA = Path(__file__).resolve().parent / "data"
NAN = math.nan

#: Feature values of an ordinary payment: no rule holds.
ORDINARY: dict[str, float] = {
    "card_tx_count_1h": 0.0, "card_amount_max_1h": NAN, "card_amount_mean_1h": NAN, "card_tx_count_24h": 2.0,
    "card_tx_count_30d": 40.0, "card_amount_mean_30d": 45.02, "card_amount_max_30d": 120.0, "amount": 38.5,
    "amount_to_mean_30d": 38.5 / 45.02, "amount_to_max_30d": 38.5 / 120.0, "seconds_since_prev_tx": 20000.0,
    "km_from_prev_tx": 3.0, "kmh_from_prev_tx": 0.5, "is_new_merchant": 0.0, "is_new_device": 0.0,
    "is_new_country": 0.0, "merchant_fraud_rate_30d": 0.0, "merchant_known_frauds_30d": 0.0,
    "merchant_known_labels_30d": 30.0, "channel_code": 0.0,
}
CASES: dict[str, dict[str, float]] = {
    "card_testing": {"card_tx_count_1h": 5.0, "card_amount_max_1h": 1.99, "card_amount_mean_1h": 1.28,
                     "is_new_merchant": 1.0, "amount": 1.5, "amount_to_mean_30d": 1.5 / 45.02, "channel_code": 1.0},
    "impossible_travel": {"km_from_prev_tx": 3632.0, "seconds_since_prev_tx": 5820.0, "kmh_from_prev_tx": 2246.6},
    "account_takeover": {"is_new_device": 1.0, "is_new_country": 1.0, "channel_code": 1.0, "amount": 682.21,
                         "amount_to_mean_30d": 682.21 / 45.02, "amount_to_max_30d": 682.21 / 120.0},
    "compromised_merchant": {"merchant_fraud_rate_30d": 0.125, "merchant_known_frauds_30d": 5.0,
                             "merchant_known_labels_30d": 40.0},
    "out_of_pattern_amount": {"amount": 612.0, "amount_to_mean_30d": 612.0 / 45.02, "amount_to_max_30d": 5.1},
}


def _values(pattern: str) -> dict[str, float]:
    return {**ORDINARY, **CASES.get(pattern, {})}


def _plan(pattern: str) -> NarrativePlan:
    values = _values(pattern)
    reasons = [render_reason(name, values, 0.4, currency="EUR") for name in ("amount_to_mean_30d", "is_new_device")]
    return build_plan(values, reasons, currency="EUR", channel="ecommerce" if values["channel_code"] == 1 else None)


@pytest.mark.parametrize("pattern", [*CASES, "none"])
def test_each_rule_names_its_pattern_on_hand_made_values(pattern: str) -> None:
    assert match_pattern(_values(pattern)) == pattern
    plan = _plan(pattern)
    assert plan.pattern.pattern == pattern and plan.pattern.title == PATTERN_TITLES[pattern]
    assert plan.pattern.rule == ("" if pattern == "none" else next(r.rule for r in RULES if r.pattern == pattern))
    if pattern != "none":
        assert plan.pattern.support, "a hypothesis comes with the facts that support it"


def test_rules_hold_only_on_their_evidence() -> None:
    # One fact short of each pattern: no hypothesis.
    assert match_pattern({**_values("card_testing"), "is_new_merchant": 0.0}) == "none"
    assert match_pattern({**_values("card_testing"), "card_amount_max_1h": 40.0}) == "none"
    one = {**_values("card_testing"), "card_tx_count_1h": 1.0}
    assert match_pattern(one) == "card_testing"  # one earlier small payment, and this one small too
    assert match_pattern({**one, "amount": 450.0, "amount_to_mean_30d": 450 / 45.02}) == "none"  # not small
    assert match_pattern({**_values("compromised_merchant"), "is_new_merchant": 1.0}) == "none"
    assert match_pattern({**_values("out_of_pattern_amount"), "channel_code": 2.0}) == "none"
    assert match_pattern({**_values("out_of_pattern_amount"), "card_tx_count_1h": 1.0}) == "none"
    assert match_pattern({**_values("impossible_travel"), "kmh_from_prev_tx": 300.0}) == "none"
    assert match_pattern({**_values("impossible_travel"), "seconds_since_prev_tx": 2 * 86400.0}) == "none"
    assert match_pattern({**_values("account_takeover"), "is_new_country": 0.0}) == "out_of_pattern_amount"
    assert match_pattern({**_values("account_takeover"), "channel_code": 0.0}) == "out_of_pattern_amount"
    assert match_pattern({**_values("compromised_merchant"), "merchant_known_frauds_30d": 1.0}) == "none"
    assert match_pattern({**_values("out_of_pattern_amount"), "amount_to_mean_30d": 2.0}) == "none"
    # Missing values never satisfy a rule.
    assert match_pattern({name: NAN for name in ORDINARY}) == "none"
    assert match_pattern({}) == "none"
    # Several rules may hold; the first in rule order names the hypothesis.
    both = {**_values("card_testing"), **CASES["impossible_travel"]}
    assert matching_patterns(both)[:2] == ["impossible_travel", "card_testing"]
    assert set(SCENARIO_OF_PATTERN) == {r.pattern for r in RULES} | {"none"}


@pytest.mark.parametrize("pattern", [*CASES, "none"])
def test_a_hypothesis_says_resembles_never_is(pattern: str) -> None:
    text = _plan(pattern).pattern.text
    assert text.startswith("This payment resembles ")
    titles = "|".join(re.escape(t) for t in PATTERN_TITLES.values())
    assert not re.search(rf"\b(?:is|was|are)\s+(?:{titles})", text, re.IGNORECASE), text


def test_evidence_compares_with_the_cards_own_normal() -> None:
    plan = _plan("card_testing")
    assert [s.text for s in plan.pattern.support] == [
        "5 earlier payments on this card in the last 1 hour, the largest 1.99 EUR",
        "this payment of 1.50 EUR at a new merchant for this card"]
    assert plan.values == {"merchant": "new"}
    one = build_plan({**_values("card_testing"), "card_tx_count_1h": 1.0}, [])
    assert one.pattern.support[0].text == "one earlier payment on this card in the last 1 hour, of 1.99 EUR"
    assert any(s.text == "the amount 1.50 EUR is 3.3% of this card's 30-day average of 45.02 EUR" for s in plan.evidence)
    travel = _plan("impossible_travel")
    assert travel.pattern.support[0].text == ("3,632 km from the previous transaction's location, 97 minutes after "
                                              "it, an implied travel speed of 2,247 km/h")
    amount = _plan("out_of_pattern_amount")
    # Said once: the hypothesis states the amount against the average, the comparisons add the largest amount.
    assert [s.text for s in amount.evidence] == ["the amount is 5.1× this card's largest amount in 30 days of "
                                                 "120.00 EUR"]


def test_counter_evidence_and_investigator_units() -> None:
    values = _values("account_takeover")
    reasons = [render_reason("amount_to_mean_30d", values, 1.5, currency="EUR"),
               render_reason("is_new_device", values, 0.5, currency="EUR"),
               render_reason("is_new_merchant", values, -0.25, currency="EUR")]
    plan = build_plan(values, reasons, contributions={"amount_to_mean_30d": 1.5, "is_new_device": 0.5,
                                                      "is_new_merchant": -0.25, "hour_of_day": 0.0},
                      margin=1.0, channel="ecommerce")
    assert [s.text for s in plan.counter_evidence] == ["known merchant for this card — lowers risk"]
    shares = {r.label: (r.share, r.units_text) for r in plan.reasons}
    assert shares["amount"] == (0.75, "75% of the push toward fraud")
    assert shares["new merchant"] == (1.0, "100% of the push away from fraud")
    points = {r.label: r.points for r in plan.reasons}
    assert points["amount"] == pytest.approx(100 * (1 / (1 + math.exp(-1.0)) - 1 / (1 + math.exp(0.5))), abs=0.01)


def test_merchant_categories_carry_their_names() -> None:
    from features.simulation.world import CATEGORIES

    names = mcc_names()
    assert len(names) >= 200
    missing = sorted({c.mcc for c in CATEGORIES} - set(names))
    assert missing == [], f"simulator MCCs without a name in explain/data/mcc_names.tsv: {missing}"
    assert mcc_label("5732") == "5732 (Electronics stores)"
    assert mcc_label("6011") == "6011 (Automated cash disbursements by financial institutions)"
    assert mcc_label("0001") == "0001" and mcc_label("not a code") is None
    assert not any(re.search(r"\d", name) for name in names.values()), "a name with digits reads as a number"


def test_absurd_what_ifs_and_no_travel_reasons_are_dropped(attributor, alert_rows, transaction_factory) -> None:
    from explain.card import build_alert_card

    zero = WhatIf(feature="amount", original_value=0.51, new_value=0.0, new_score=0.4, under_threshold=True,
                  text="at 0.00 EUR instead of 0.51 EUR the score would be 0.40, under the threshold 0.50")
    unchanged = WhatIf(feature="amount", original_value=0.51, new_value=0.01, new_score=0.998, under_threshold=False,
                       text="even at 0.01 EUR instead of 0.51 EUR the score would be 0.998, still at or above the "
                            "threshold 0.500")
    useful = WhatIf(feature="is_new_device", original_value=1.0, new_value=0.0, new_score=0.3, under_threshold=True,
                    text="had the device been one this card used before, the score would be 0.30, under the "
                         "threshold 0.50")
    assert useful_what_ifs([zero, unchanged, useful]) == [useful]

    row = alert_rows.to_numpy()[0].copy()
    names = list(attributor.feature_names)
    row[names.index("kmh_from_prev_tx")] = 0.0
    row[names.index("km_from_prev_tx")] = 0.0
    attr = attributor.attribute(row[None, :])[0]
    values = dict(zip(names, row, strict=True))
    still = render_reason("kmh_from_prev_tx", values, 0.3, currency="EUR")
    reasons = [still, *[render_reason(n, values, 0.2, currency="EUR") for n in ("amount", "is_night")]]
    card = build_alert_card(transaction_factory(), attr, score=0.9, threshold=0.5, reasons=reasons,
                            what_if=[zero, unchanged, useful])
    assert card.plan is not None and card.plan.left_out == ["kmh_from_prev_tx"]
    facts = card.facts()
    shown = facts.text + "\n" + card.narrative.text
    assert not re.search(r"(?<![\d,.])0 km/h", shown) and not re.search(r"(?<![\d,.])0\.00 EUR", shown)
    assert "even at" not in shown and card.what_if == [useful]
    assert useful.text in facts.text
    assert GroundingChecker().check(card.narrative.text, facts).passed


def _real_cards(real_bundle: Any, sim_file: Path, n: int = 20) -> list[AlertCard]:
    from explain.evaluate import load_scored, pick_alerts
    from explain.explainer import AlertExplainer
    from features.io import read_transactions

    scored = load_scored(read_transactions(sim_file).frame, real_bundle)
    rows = pick_alerts(scored.scores, float(real_bundle.threshold.threshold), n)
    explainer = AlertExplainer(real_bundle, family_of=scored.family_of).setup()
    return explainer.cards(scored.transactions(rows), scored.X[rows], scores=scored.scores[rows])


def _investigator_texts(card: AlertCard) -> list[str]:
    assert card.plan is not None
    plan = card.plan
    return [card.narrative.text, card.facts().text, card.facts().headline, card.history.summary, *plan.lines(),
            plan.pattern.text, plan.history, *plan.what_if, *(s.text for s in plan.evidence),
            *(s.text for s in plan.counter_evidence), *(f"{r.label} {r.text} {r.units_text}" for r in plan.reasons),
            *(r.text for r in card.reasons), *(w.text for w in card.what_if), plan.merchant_category or ""]


def test_real_cards_plan_pass_the_verifier_and_read_in_investigator_units(real_bundle, sim_file) -> None:
    cards = _real_cards(real_bundle, sim_file)
    assert len(cards) == 20
    identifiers = [name for name in real_bundle.feature_names if "_" in name]
    checker = GroundingChecker()
    refused = []
    for card in cards:
        assert card.plan is not None and card.narrative.text.startswith("This payment resembles ")
        report = checker.check(card.narrative.text, card.facts())
        if not report.passed:
            refused.append((card.narrative.text, report.failures()))
        for text in _investigator_texts(card):
            assert "log-odds" not in text.lower(), text
            leaked = [name for name in identifiers if re.search(rf"\b{re.escape(name)}\b", text)]
            assert leaked == [], (leaked, text)
            assert not re.search(r"(?<![\d,.])0 km/h", text) and not re.search(r"(?<![\d,.])0\.00 EUR", text), text
        if card.transaction.mcc:
            assert f"merchant category {mcc_label(card.transaction.mcc)}" in card.facts().text
            assert "(" in str(card.plan.merchant_category)
        assert all(line in card.facts().text for line in card.plan.lines())
    assert refused == [], refused  # 20 of 20 template narratives pass the closed-world verifier


def test_a_model_text_saying_the_plans_statements_passes(real_bundle, sim_file) -> None:
    card = next(c for c in _real_cards(real_bundle, sim_file) if c.plan is not None and c.plan.pattern.support)
    assert card.plan is not None
    facts = card.facts()
    reasons = "; ".join(r.text for r in facts.narrative_reasons)
    support = "; ".join(s.text for s in card.plan.pattern.support)
    text = (f"{facts.headline} The reasons: {reasons}. This payment resembles {card.plan.pattern.title}, "
            f"with {support}.")
    checker = GroundingChecker()
    report = checker.check(text, facts)
    assert report.passed, report.failures()
    # Without the plan's statements the same text is refused (its numbers and words are the plan's).
    bare = dataclasses.replace(facts, plan=None)
    assert not checker.verify(text, licence_from_facts(bare)).passed


def test_a_card_round_trips_with_its_plan_and_old_cards_without_one_still_load(real_bundle, sim_file) -> None:
    card = _real_cards(real_bundle, sim_file, n=2)[0]
    again = AlertCard.model_validate_json(card.model_dump_json())
    assert again == card and again.plan == card.plan
    assert json.loads(card.model_dump_json())["plan"]["pattern"]["text"].startswith("This payment resembles")

    old = json.loads((DATA / "cards" / "card_00.json").read_text())
    assert "plan" not in old
    loaded = AlertCard.model_validate(old)
    assert loaded.plan is None
    facts = loaded.facts()
    assert facts.plan is None and facts.template_text().startswith("Suspected fraud")


def test_the_desk_waterfall_reads_in_score_points_and_reason_words(real_bundle, sim_file) -> None:
    from api.svg import waterfall_steps, waterfall_svg

    card = _real_cards(real_bundle, sim_file, n=2)[0].model_dump(mode="json")
    svg = str(waterfall_svg(card))
    assert "log-odds" not in svg and "margin" not in svg and " pts<" in svg
    leaked = [name for name in real_bundle.feature_names if "_" in name and re.search(rf"\b{name}\b", svg)]
    assert leaked == []
    steps = waterfall_steps(card)
    assert steps is not None and steps[-1][2] == pytest.approx(card["provenance"]["margin"])
