"""Alert cards: masked PII, versioned schema, provenance, template narrative that passes its own checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explain.card import CARD_SCHEMA_VERSION, AlertCard, alert_card_schema, build_alert_card
from explain.checks import GroundingChecker
from explain.faithfulness import score_faithfulness
from explain.masking import customer_ref, mask_tail
from explain.prompt import build_prompt

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "explain" / "alert_card.schema.json"

PII = ("4111111111111111", "device-9f8e7d6c5b4a3921", "9f8e7d6c5b4a3921", "jane.doe", "example.com", "52.52", "13.405")


def test_card_json_carries_no_pii(card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory(), customer_hash_key=b"k")
    text = card.model_dump_json()
    for secret in PII:
        assert secret not in text, secret
    assert card.transaction.card == "****1111"
    assert card.transaction.device == "****3921"
    assert card.transaction.customer_ref == customer_ref("cust-jane.doe@example.com", b"k")
    assert card.transaction.customer_ref.startswith("cust_") and len(card.transaction.customer_ref) == 21


def test_prompt_holds_only_the_masked_fact_sheet(card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory(), customer_hash_key=b"k")
    prompt = json.dumps(build_prompt(card.facts()).as_messages())
    for secret in (*PII, card.transaction.customer_ref, "****1111"):
        assert secret not in prompt, secret


def test_customer_is_dropped_without_a_key_and_short_ids_are_fully_masked(card_for, alert_rows,
                                                                          transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory(card_id="c12", device_id="d9"))
    assert card.transaction.customer_ref is None
    assert card.transaction.card == "****" and card.transaction.device == "****"
    assert mask_tail("card-000123") == "****0123"


def test_card_has_scores_reasons_history_and_provenance(tiny_bundle, card_for, alert_rows, transaction_factory) -> None:
    row = alert_rows.iloc[0]
    card = card_for(row, transaction_factory())
    assert card.schema_version == CARD_SCHEMA_VERSION
    assert card.decision == "alert" and card.score >= card.threshold == tiny_bundle.threshold.threshold
    assert card.score == pytest.approx(float(tiny_bundle.score(row.to_numpy()[None, :])[0]))
    assert 1 <= len(card.reasons) <= 5 and card.anomaly_score == 0.5
    assert card.provenance.base_value + sum(card.family_contributions.values()) == pytest.approx(card.provenance.margin)
    assert card.provenance.margin == pytest.approx(float(tiny_bundle.margin(row.to_numpy()[None, :])[0]), abs=1e-4)
    assert card.provenance.shap_version and card.history.summary
    assert card.narrative.status == "template" and card.narrative.provenance.backend == "template"
    assert AlertCard.model_validate_json(card.model_dump_json()) == card


def test_template_narrative_passes_every_check_and_is_fully_faithful(card_for, alert_rows, transaction_factory) -> None:
    checker = GroundingChecker()
    for i in range(len(alert_rows)):
        card = card_for(alert_rows.iloc[i], transaction_factory())
        facts = card.facts()
        report = checker.check(card.narrative.text, facts)
        assert report.passed, (card.narrative.text, report.details())
        faith = score_faithfulness(card.narrative.text, facts)
        assert (faith.accuracy, faith.completeness) == (4, 4), (card.narrative.text, faith)


def test_build_alert_card_is_usable_directly_on_the_hot_path(attributor, alert_rows, transaction_factory) -> None:
    attr = attributor.attribute(alert_rows.to_numpy()[:2])
    card = build_alert_card(transaction_factory(currency=None), attr[1], score=0.91, threshold=0.5, top_k=3,
                            currency="GBP")
    assert len(card.reasons) == 3 and card.transaction.currency == "GBP" and "GBP" in card.narrative.text
    with pytest.raises(TypeError, match="index the batch"):
        build_alert_card(transaction_factory(), attr, score=0.9, threshold=0.5)


def test_published_schema_matches_the_model() -> None:
    """Changing the card changes its schema: regenerate the file and bump CARD_SCHEMA_VERSION together."""
    current = alert_card_schema()
    assert current["properties"]["schema_version"]["const"] == CARD_SCHEMA_VERSION
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == current, (
        "AlertCard changed: bump CARD_SCHEMA_VERSION if the change is not backwards compatible and regenerate with "
        "python -c 'import json; from explain.card import alert_card_schema; "
        "print(json.dumps(alert_card_schema(), indent=2))' > explain/alert_card.schema.json"
    )


def test_what_if_on_card_is_a_rescored_fact(tiny_bundle, card_for, alert_rows, transaction_factory) -> None:
    from explain.whatif import with_amount

    for i in range(len(alert_rows)):
        card = card_for(alert_rows.iloc[i], transaction_factory())
        for what in card.what_if:
            if what.feature != "amount":
                continue
            rows = with_amount(alert_rows.iloc[i].to_numpy(), tiny_bundle.feature_names, np.array([what.new_value]))
            assert float(tiny_bundle.score(rows)[0]) == pytest.approx(what.new_score)
            assert what.text in card.facts().text
            return
    pytest.fail("no alert row had an amount what-if; the fixture's alerts should include one")
