"""Grounding checks, each failing on a crafted bad text, and the faithfulness scores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from explain.card import MaskedTransaction
from explain.checks import (
    GroundingChecker,
    check_coverage,
    check_direction,
    check_factors,
    check_length,
    check_numbers,
    check_scope,
)
from explain.facts import FactSheet
from explain.faithfulness import score_faithfulness
from explain.formatting import extract_numbers, matches
from explain.reasons import render_reason

VALUES = {
    "amount": 2450.0, "amount_to_mean_30d": 12.3, "card_amount_mean_30d": 199.10, "is_new_device": 1.0,
    "kmh_from_prev_tx": 850.0, "is_new_merchant": 0.0,
}


@pytest.fixture
def facts() -> FactSheet:
    reasons = [
        render_reason("amount_to_mean_30d", VALUES, 1.9, currency="EUR"),
        render_reason("is_new_device", VALUES, 1.1, currency="EUR"),
        render_reason("kmh_from_prev_tx", VALUES, 0.6, currency="EUR"),
        render_reason("is_new_merchant", VALUES, -0.3, currency="EUR"),
    ]
    tx = MaskedTransaction(transaction_id="tx-1", timestamp=datetime(2026, 3, 14, 2, 17, tzinfo=UTC), amount=2450.0,
                           currency="EUR", card="****1111", merchant_id="mer-00042", mcc="5732", channel="ecommerce",
                           country="DE")
    return FactSheet.build(transaction=tx, score=0.87, threshold=0.62, decision="alert", reasons=reasons, what_if=[],
                           history_summary="earlier transactions: 3 in 24 hours; 30-day average 199.10 EUR")


GOOD = ("Suspected fraud: an ecommerce payment of 2,450 EUR scored 0.87 against a threshold of 0.62. "
        "The amount is 12.3× the card's 30-day average of 199.10 EUR, which raises risk, and the new device "
        "also raises risk; the implied travel speed of 850 km/h adds to the risk.")


def test_a_faithful_paraphrase_passes_every_check(facts: FactSheet) -> None:
    report = GroundingChecker().check(GOOD, facts)
    assert report.passed, report.details()
    assert score_faithfulness(GOOD, facts).accuracy == 4
    assert score_faithfulness(GOOD, facts).completeness == 4


def test_numbers_tolerate_formatting_and_rounding(facts: FactSheet) -> None:
    for ok in ("2450.00 EUR", "2,450 EUR", "12×", "12.3 times", "87%", "199.1 EUR", "scored 0.9", "2,450 €",
               "2026-03-14", "02:17", "2.45 thousand EUR"):
        assert check_numbers(f"The amount was {ok} here.", facts).passed, ok
    stated = extract_numbers("12.34 and 2,450.00 and 87 %")
    assert [n.value for n in stated] == [12.34, 2450.0, 87.0] and stated[2].is_percent
    assert matches(stated[0], 12.3449) and not matches(stated[0], 12.4)


@pytest.mark.parametrize("bad", [
    "The amount of 3,100.00 EUR is far above normal.",   # invented amount
    "The amount is 15× the 30-day average.",             # wrong ratio
    "The score was 0.95.",                               # wrong score
    "It is 42% more than usual.",                        # invented percentage
    "The card spent 13.0 million EUR.",                  # scale words count
    "A payment of 500.00 USD was made.",                 # another currency
    "It happened on 2026-02-01 at 09:45.",               # invented date and time
])
def test_numbers_not_in_the_fact_sheet_fail(facts: FactSheet, bad: str) -> None:
    result = check_numbers(bad, facts)
    assert not result.passed and "not in the fact sheet" in result.detail


def test_a_factor_outside_the_reasons_fails(facts: FactSheet) -> None:
    bad = "The foreign country raises risk, and the night-time hour raises the risk too."
    result = check_factors(bad, facts)
    assert not result.passed and "new country" in result.detail and "time of day" in result.detail
    # Describing the transaction is not naming a reason.
    assert check_factors("This was an ecommerce transaction in country DE.", facts).passed


@pytest.mark.parametrize("bad", [
    "The new device lowers the risk.",
    "The travel speed of 850 km/h reduces risk.",
    "The known merchant raises the risk of fraud.",
])
def test_a_wrong_direction_fails(facts: FactSheet, bad: str) -> None:
    result = check_direction(bad, facts)
    assert not result.passed, bad


def test_the_right_direction_passes(facts: FactSheet) -> None:
    assert check_direction("The known merchant lowers risk; the new device raises risk.", facts).passed


@pytest.mark.parametrize("bad", [
    "Please contact the customer to confirm the payment.",
    "Investigators should call the cardholder.",
    "We recommend blocking the card.",
    "You should decline the transaction.",
    "This transaction is definitely fraud.",
    "The payment is fraudulent.",
    "This was clearly done by a fraudster with a stolen card.",
    "Send details to jane.doe@example.com.",
    "The card 4111 1111 1111 1111 was used.",
    "We will send a warning to the cardholder.",
    "The suspect was found guilty and sentenced to 2 years in prison.",
    "This looks like money laundering through cryptocurrencies.",
])
def test_out_of_scope_content_fails(facts: FactSheet, bad: str) -> None:
    # Stories and PII are refused by the closed vocabulary, the numbers and the echo check, not by a list
    # of known bad words: the verifier as a whole must refuse every one of them.
    assert not GroundingChecker().check(bad, facts).passed, bad


def test_a_text_that_never_says_why_fails_coverage(facts: FactSheet) -> None:
    vague = "Suspected fraud: an ecommerce payment of 2,450 EUR scored 0.87. The new device raises risk."
    result = check_coverage(vague, facts)
    assert not result.passed and "amount" in result.detail
    assert check_coverage("The amount, 12.3× the 30-day average, raises risk.", facts).passed
    assert not check_coverage("The amount, 12.3× the 30-day average, lowers risk.", facts).passed


def test_percent_means_hundredths(facts: FactSheet) -> None:
    assert not check_numbers("The score was 0.87%.", facts).passed
    assert check_numbers("The score was 87%.", facts).passed


def test_suspected_is_the_allowed_certainty() -> None:
    assert check_scope("Suspected fraud: the model scored this payment above the alert threshold.").passed


def test_length_bounds() -> None:
    assert not check_length("Suspected fraud.", 12, 140).passed
    assert not check_length("word " * 200, 12, 140).passed
    assert check_length("word " * 30 + "end.", 12, 140).passed
    assert check_length("word " * 30 + "end", 12, 140).detail == "ends mid-sentence"


def test_only_complete_sentences_are_checked() -> None:
    from explain.checks import complete_sentences

    assert complete_sentences("The amount is 2.5 EUR. The model then stopp") == "The amount is 2.5 EUR."
    assert complete_sentences("Scored 0.31. Then") == "Scored 0.31."
    assert complete_sentences("no sentence end") == "no sentence end"


def test_faithfulness_scales(facts: FactSheet) -> None:
    wrong_value = GOOD.replace("12.3×", "15×")
    assert score_faithfulness(wrong_value, facts).accuracy == 0
    wrong_direction = GOOD.replace("the new device also raises risk", "the new device lowers risk")
    assert score_faithfulness(wrong_direction, facts).accuracy == 0
    missing = "Suspected fraud: the amount is 12.3× the 30-day average of 199.10 EUR, which raises risk."
    assert score_faithfulness(missing, facts).completeness == 0
    no_value = GOOD.replace("of 850 km/h ", "")
    partial = score_faithfulness(no_value, facts)
    assert 1 <= partial.completeness <= 3 and partial.without_value == ["kmh_from_prev_tx"]
    extra_factor = GOOD + " The foreign country raises risk as well."
    assert score_faithfulness(extra_factor, facts).accuracy == 3
