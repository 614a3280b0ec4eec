"""The closed-world verifier against the committed narrative sets and real template narratives.

* ``data/adversarial_narratives.jsonl``: narratives with an invention each (entity, story, verdict,
  injection, URL, contact advice, echoed id, flipped direction or flag, wrong unit, a number said
  about the wrong fact or window, a false comparison) and the check that must catch it: none may pass.
* ``data/honest_narratives.jsonl``: paraphrases of the facts in varied wording, order and sentence
  shape (``data/make_honest_narratives.py``), and ``data/honest_narratives_by_hand.jsonl``, written
  freely by hand: at least 95% must pass, so the verifier does not demand the template.
* ``data/cards/``: the alert cards both sets refer to by name, built by the fixtures' tiny model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explain.card import AlertCard
from explain.checks import CHECK_NAMES, GroundingChecker
from explain.licence import LicensedNumber, licence_from_facts

DATA = Path(__file__).resolve().parent / "data"


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cards() -> dict[str, AlertCard]:
    return {path.stem: AlertCard.model_validate_json(path.read_text()) for path in sorted((DATA / "cards").glob("*.json"))}


def test_no_adversarial_narrative_passes(cards: dict[str, AlertCard]) -> None:
    adversarial = _lines("adversarial_narratives.jsonl")
    assert len(adversarial) >= 50
    checker = GroundingChecker()
    passed, missed = [], []
    for item in adversarial:
        assert item["check"] in CHECK_NAMES, item
        report = checker.check(item["text"], cards[item["card"]].facts())
        if report.passed:
            passed.append(item["text"])
        elif item["check"] not in report.failed:
            missed.append((item["check"], report.failed, item["text"]))
    print(f"adversarial: {len(passed)} of {len(adversarial)} passed")
    assert passed == [], passed
    assert missed == [], missed  # each is refused by the check meant to catch it


def test_honest_paraphrases_pass(cards: dict[str, AlertCard]) -> None:
    honest = _lines("honest_narratives.jsonl") + _lines("honest_narratives_by_hand.jsonl")
    assert len(honest) >= 200 and len({h["text"] for h in honest}) == len(honest)
    checker = GroundingChecker()
    failures = []
    for item in honest:
        report = checker.check(item["text"], cards[item["card"]].facts())
        if not report.passed:
            failures.append((item["card"], item["text"], report.failures()))
    rate = 1 - len(failures) / len(honest)
    print(f"honest: {len(honest) - len(failures)} of {len(honest)} passed ({rate:.1%})")
    for card, text, failed in failures:
        print(f"  REFUSED {card}: {text}\n    {[(f['check'], f['detail']) for f in failed]}")
    assert rate >= 0.95


def test_honest_paraphrases_are_not_the_template(cards: dict[str, AlertCard]) -> None:
    templates = {card.facts().template_text() for card in cards.values()}
    honest = [h["text"] for h in _lines("honest_narratives.jsonl") + _lines("honest_narratives_by_hand.jsonl")]
    assert not templates & set(honest)
    assert sum("Main reasons:" in text for text in honest) == 0


def test_template_narratives_of_cards_built_by_the_fixtures_pass(tiny_bundle, feature_rows,
                                                                 transaction_factory) -> None:
    from explain.explainer import AlertExplainer

    scores = tiny_bundle.score(feature_rows.to_numpy())
    order = np.argsort(-scores)
    rows = np.concatenate([order[:14], order[-3:], order[len(order) // 2:len(order) // 2 + 3]])
    explainer = AlertExplainer(tiny_bundle).setup()
    channels = ("ecommerce", "card_present", "atm", None)
    checker = GroundingChecker()
    refused = []
    for k, i in enumerate(rows):
        tx = transaction_factory(channel=channels[k % 4], currency=("EUR", "GBP", "USD")[k % 3],
                                 amount=float(feature_rows.iloc[i]["amount"]))
        card = explainer.cards([tx], feature_rows.iloc[[i]].to_numpy())[0]
        report = checker.check(card.narrative.text, card.facts())
        if not report.passed:
            refused.append((card.narrative.text, report.failures()))
    print(f"template narratives: {len(rows) - len(refused)} of {len(rows)} passed")
    assert len(rows) == 20 and refused == []


def test_template_narratives_of_a_real_bundle_pass(real_bundle: Any, sim_file: Path) -> None:
    from explain.evaluate import load_scored, pick_alerts
    from explain.explainer import AlertExplainer
    from features.io import read_transactions

    scored = load_scored(read_transactions(sim_file).frame, real_bundle)
    rows = pick_alerts(scored.scores, float(real_bundle.threshold.threshold), 20)
    explainer = AlertExplainer(real_bundle, family_of=scored.family_of).setup()
    found = explainer.cards(scored.transactions(rows), scored.X[rows], scores=scored.scores[rows])
    checker = GroundingChecker()
    refused = [(c.narrative.text, checker.check(c.narrative.text, c.facts()).failures()) for c in found
               if not checker.check(c.narrative.text, c.facts()).passed]
    assert len(found) == 20 and refused == []


def test_a_failed_check_names_itself_and_the_offending_span(cards: dict[str, AlertCard]) -> None:
    text = ("Suspected fraud: an online payment of 682.21 EUR scored 0.94 against an alert threshold of 0.50. "
            "The amount is 12.2× the card's 7-day average of 56.03 EUR, which raises risk. The suspect had been "
            "using a device called MobiLite. It is safe to approve this payment. The 30-day average is 83.72 EUR.")
    report = GroundingChecker().check(text, cards["card_00"].facts())
    failed = {f["check"]: f for f in report.failures()}
    assert {"vocabulary", "verdict", "binding"} <= set(failed)
    assert {"suspect", "called", "MobiLite"} <= {s["text"] for s in failed["vocabulary"]["spans"]}
    assert any(s["text"] == "83.72 EUR" for s in failed["binding"]["spans"])
    assert "mean" in failed["binding"]["detail"] and "max" in failed["binding"]["detail"]
    for f in failed.values():
        for span in f["spans"]:
            assert text[span["start"]:span["end"]] == span["text"]


def test_a_number_must_be_bound_to_its_own_fact(cards: dict[str, AlertCard]) -> None:
    """0.51 EUR stated as the amount is refused even when some other fact is 0.51 EUR."""
    facts = cards["card_00"].facts()
    licence = licence_from_facts(facts).extend(numbers=[LicensedNumber(0.51, "money", "sum", currency="EUR")])
    checker = GroundingChecker()
    head = ("Suspected fraud: the amount is 12.2× the card's 7-day average of 56.03 EUR, which raises risk. ")
    assert checker.verify(head + "The card spent 0.51 EUR in total before this payment.", licence).passed
    refused = checker.verify(head + "The amount of 0.51 EUR is small.", licence)
    assert not refused.passed and refused.failed == ["binding"]


def test_a_plan_extends_the_licence_with_its_statements(cards: dict[str, AlertCard]) -> None:
    facts = cards["card_00"].facts()
    text = ("Suspected fraud: the amount is 12.2× the card's 7-day average of 56.03 EUR, which raises risk. "
            "The pattern fits card testing.")
    checker = GroundingChecker()
    assert checker.check(text, facts).failed == ["vocabulary"]
    assert checker.verify(text, licence_from_facts(facts).extend(words=["testing", "fits"])).passed


def test_what_ifs_are_licensed_only_as_what_ifs(cards: dict[str, AlertCard]) -> None:
    facts = cards["card_00"].facts()
    head = "Suspected fraud: the amount is 12.2× the card's 7-day average of 56.03 EUR, which raises risk. "
    checker = GroundingChecker()
    assert checker.check(head + "At 87.74 EUR instead of 682.21 EUR, the score would be 0.48.", facts).passed
    assert not checker.check(head + "The score was 0.48.", facts).passed
    assert not checker.check(head + "At 90.00 EUR instead of 682.21 EUR, the score would be 0.48.", facts).passed


def test_a_text_far_beyond_a_narrative_is_refused_on_its_length(cards: dict[str, AlertCard]) -> None:
    facts = cards["card_00"].facts()
    report = GroundingChecker().check(facts.template_text() + " x" * 50_000, facts)
    assert not report.passed and report.failed == ["length"] and "characters" in report["length"].detail
