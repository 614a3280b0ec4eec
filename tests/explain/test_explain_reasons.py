"""Reason codes: one template per model feature, real numbers, direction, and factor names the checks know."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explain.errors import UnknownFeatureError
from explain.reasons import CATALOGUE, FAMILY_OF, concepts_in, reason_codes, render_reason


def _values(**overrides: float) -> dict[str, float]:
    values = {
        **{f"card_tx_count_{w}": c for w, c in (("1h", 2.0), ("24h", 5.0), ("7d", 12.0), ("30d", 40.0))},
        **{f"card_amount_sum_{w}": 100.0 * c for w, c in (("1h", 2.0), ("24h", 5.0), ("7d", 12.0), ("30d", 40.0))},
        **{f"card_amount_mean_{w}": 199.1 for w in ("1h", "24h", "7d", "30d")},
        **{f"card_amount_max_{w}": 820.0 for w in ("1h", "24h", "7d", "30d")},
        "amount": 2450.0, "amount_log1p": math.log1p(2450.0), "amount_to_mean_7d": 2450.0 / 199.1,
        "amount_to_mean_30d": 2450.0 / 199.1, "amount_to_max_30d": 2450.0 / 820.0,
        "seconds_since_prev_tx": 95.0, "km_from_prev_tx": 1234.5, "kmh_from_prev_tx": 46780.0,
        "is_new_merchant": 1.0, "is_new_device": 1.0, "is_new_country": 0.0,
        "merchant_fraud_rate_30d": 0.042, "merchant_fraud_rate_90d": 0.03, "merchant_known_labels_30d": 48.0,
        "merchant_known_frauds_30d": 2.0, "hour_of_day": 2.0, "day_of_week": 5.0, "is_weekend": 1.0,
        "is_night": 1.0, "channel_code": 1.0, "mcc_code": 5732.0,
    }
    values.update(overrides)
    return values


def test_every_model_feature_has_a_reason_template(model_feature_names: list[str]) -> None:
    names = model_feature_names
    missing = [name for name in names if name not in CATALOGUE]
    assert not missing, f"features without a reason template in explain.reasons.CATALOGUE: {missing}"
    assert len(names) == 37


def test_catalogue_families_agree_with_the_pipeline() -> None:
    pipeline = pytest.importorskip("features.pipeline").FeaturePipeline.from_settings()
    assert {n: FAMILY_OF[n] for n in pipeline.feature_names} == dict(pipeline.family_of)


def test_issue_example_is_rendered_with_real_numbers_and_direction() -> None:
    reason = render_reason("amount_to_mean_30d", _values(amount_to_mean_30d=12.3, card_amount_mean_30d=199.10), 1.7,
                           currency="EUR")
    assert reason.text == "amount 2,450.00 EUR is 12.3× this card's 30-day average (199.10 EUR) — raises risk"
    assert reason.direction == "raises" and reason.value_text == "12.3×" and reason.family == "amount_profile"
    lowered = render_reason("amount_to_mean_30d", _values(), -0.4, currency="USD")
    assert lowered.text.endswith("— lowers risk") and "USD" in lowered.text


@pytest.mark.parametrize("feature", sorted(CATALOGUE))
@pytest.mark.parametrize("shap", [0.8, -0.5])
def test_each_template_renders_and_names_only_its_own_factor(feature: str, shap: float) -> None:
    for values in (_values(), _values(is_new_merchant=0.0, is_new_device=0.0, is_new_country=1.0, is_night=0.0,
                                      is_weekend=0.0)):
        reason = render_reason(feature, values, shap, currency="EUR")
        assert reason.direction == ("raises" if shap > 0 else "lowers")
        assert reason.text.endswith(f"— {reason.direction} risk")
        assert "{" not in reason.text and "nan" not in reason.text.lower()
        # The grounding checks find this reason's factor, and no other, in its own sentence.
        assert concepts_in(reason.text) == {CATALOGUE[feature].concept}, reason.text


@pytest.mark.parametrize("feature", sorted(CATALOGUE))
def test_missing_values_have_their_own_wording(feature: str) -> None:
    values = _values(**{feature: math.nan})
    reason = render_reason(feature, values, 0.3, currency="EUR")
    assert reason.feature_value is None and reason.value_text is None
    assert "nan" not in reason.text.lower() and concepts_in(reason.text) == {CATALOGUE[feature].concept}
    assert "{" not in reason.text  # the missing-value sentence is filled in too


def test_missing_ratio_quotes_the_amount() -> None:
    reason = render_reason("amount_to_mean_30d", _values(amount_to_mean_30d=math.nan, amount=120.0), 0.4, currency="EUR")
    assert reason.text.startswith("amount 120.00 EUR with no 30-day average")


def test_unknown_feature_is_a_narrow_error() -> None:
    with pytest.raises(UnknownFeatureError, match="add one"):
        render_reason("not_a_feature", {}, 1.0, currency="EUR")


def test_reason_codes_follow_the_attribution(attributor, alert_rows) -> None:
    attr = attributor.attribute_one(alert_rows.iloc[0].to_numpy())
    reasons = reason_codes(attr, top_k=4)
    assert [r.feature for r in reasons] == [c.name for c in attr.top(4)]
    for reason in reasons:
        assert np.sign(reason.shap_value) == (1 if reason.direction == "raises" else -1)
