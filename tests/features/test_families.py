"""Hand-computed examples per family, checked through both executions.

Each example is a handful of transactions whose features can be worked out on
paper; :func:`both` runs the family in batch and online and requires the two to
agree before the expected values are compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.base import MS_PER_DAY, MS_PER_HOUR, LabelEvent
from features.families import (
    AmountProfile,
    Calendar,
    CardVelocity,
    ChannelMcc,
    Family,
    Geo,
    MerchantRisk,
    Novelty,
    Recency,
)
from features.pipeline import FeaturePipeline
from features.schema import Transaction, normalize_frame
from fraudlens.settings import FeatureSettings

T0 = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday
MIN = 60_000
NAN = math.nan
PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


def frame_of(*rows: dict[str, Any]) -> pd.DataFrame:
    """A canonical frame; ``at`` is ms after T0, other keys are canonical fields."""
    records = []
    for i, row in enumerate(rows):
        row = dict(row)
        at = row.pop("at")
        record = {
            "transaction_id": f"t{i}",
            "card_id": "c1",
            "merchant_id": "m1",
            "amount": 10.0,
            **row,
        }
        record["timestamp"] = T0 + pd.Timedelta(milliseconds=at)
        if "label_at" in record:
            record["label_timestamp"] = T0 + pd.Timedelta(milliseconds=record.pop("label_at"))
        records.append(record)
    frame, rejects = normalize_frame(pd.DataFrame(records))
    assert len(rejects) == 0
    return frame


@pytest.fixture
def both(
    run_online: Callable[..., np.ndarray], assert_same: Callable[..., None]
) -> Callable[..., pd.DataFrame]:
    """``both(family, *rows)``: the family's batch features for ``rows``, after checking online agrees."""

    def run(family: Family, *rows: dict[str, Any]) -> pd.DataFrame:
        frame = frame_of(*rows)
        batch = family.transform_many(frame)
        labels = FeaturePipeline([family]).label_events(frame)
        online = run_online(family, frame, labels, check_pure_every=1)
        assert_same(batch.to_numpy(), online, family.feature_names, what=family.name)
        return batch

    return run


def column(result: pd.DataFrame, name: str) -> list[float]:
    return [round(v, 9) if not math.isnan(v) else v for v in result[name].tolist()]


def assert_values(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert (math.isnan(a) and math.isnan(e)) or a == pytest.approx(e, rel=1e-12, abs=1e-9), (
            actual,
            expected,
        )


# -- card_velocity -----------------------------------------------------------------


def test_velocity_three_transactions_twenty_minutes_apart(
    both: Callable[..., pd.DataFrame],
) -> None:
    out = both(
        CardVelocity(),
        {"at": 0, "amount": 10.0},
        {"at": 20 * MIN, "amount": 30.0},
        {"at": 40 * MIN, "amount": 20.0},
    )
    assert_values(column(out, "card_tx_count_1h"), [0, 1, 2])
    assert_values(column(out, "card_amount_sum_1h"), [0, 10, 40])
    assert_values(column(out, "card_amount_mean_1h"), [NAN, 10, 20])
    assert_values(column(out, "card_amount_max_1h"), [NAN, 10, 30])


def test_velocity_window_excludes_a_transaction_exactly_one_window_old(
    both: Callable[..., pd.DataFrame],
) -> None:
    # 30 minutes apart: at 60 min the first one is exactly 1 h old, and t - ts < W is strict.
    out = both(
        CardVelocity(),
        {"at": 0},
        {"at": 30 * MIN},
        {"at": 60 * MIN},
        {"at": 60 * MIN - 1 + MS_PER_HOUR},
    )
    assert_values(column(out, "card_tx_count_1h"), [0, 1, 1, 1])
    assert_values(column(out, "card_tx_count_24h"), [0, 1, 2, 3])


def test_velocity_counts_equal_timestamps_processed_earlier_and_separates_cards(
    both: Callable[..., pd.DataFrame],
) -> None:
    out = both(
        CardVelocity(),
        {"at": 0, "amount": 5.0},
        {"at": 0, "amount": 7.0},
        {"at": 0, "amount": 1.0, "card_id": "c2"},
        {"at": 31 * MS_PER_DAY, "amount": 2.0},
    )
    assert_values(column(out, "card_tx_count_1h"), [0, 1, 0, 0])
    assert_values(column(out, "card_amount_sum_30d"), [0, 5, 0, 0])
    assert_values(column(out, "card_amount_max_30d"), [NAN, 5, NAN, NAN])


def test_velocity_window_max_after_the_maximum_expires(both: Callable[..., pd.DataFrame]) -> None:
    out = both(
        CardVelocity(),
        {"at": 0, "amount": 90.0},
        {"at": 40 * MIN, "amount": 20.0},
        {"at": 70 * MIN, "amount": 5.0},
    )
    assert_values(column(out, "card_amount_max_1h"), [NAN, 90, 20])
    assert_values(column(out, "card_amount_max_24h"), [NAN, 90, 90])


def test_velocity_sums_are_exact_after_expiry(both: Callable[..., pd.DataFrame]) -> None:
    # 0.1 + 0.2 - 0.1 in floats is 0.20000000000000004; the windows keep exact cents.
    out = both(
        CardVelocity(),
        {"at": 0, "amount": 0.1},
        {"at": 1, "amount": 0.2},
        {"at": MS_PER_HOUR, "amount": 0.0},
    )
    assert column(out, "card_amount_sum_1h")[2] == 0.2


# -- amount_profile ----------------------------------------------------------------


def test_amount_profile_ratios_to_prior_mean_and_max(both: Callable[..., pd.DataFrame]) -> None:
    day = MS_PER_DAY
    out = both(
        AmountProfile(),
        {"at": 0, "amount": 10.0},
        {"at": day, "amount": 30.0},
        {"at": 2 * day, "amount": 20.0},
        {"at": 9 * day, "amount": 40.0},
    )
    assert_values(column(out, "amount"), [10, 30, 20, 40])
    assert_values(column(out, "amount_log1p"), [math.log1p(v) for v in (10, 30, 20, 40)])
    assert_values(
        column(out, "amount_to_mean_7d"), [NAN, 3.0, 1.0, NAN]
    )  # day 9: all prior are >= 7 d old
    assert_values(column(out, "amount_to_mean_30d"), [NAN, 3.0, 1.0, 2.0])
    assert_values(column(out, "amount_to_max_30d"), [NAN, 3.0, 20 / 30, 40 / 30])


def test_amount_profile_zero_denominator_is_missing(both: Callable[..., pd.DataFrame]) -> None:
    out = both(AmountProfile(), {"at": 0, "amount": 0.0}, {"at": MIN, "amount": 5.0})
    assert_values(column(out, "amount_to_mean_7d"), [NAN, NAN])
    assert_values(column(out, "amount_to_max_30d"), [NAN, NAN])


# -- recency -----------------------------------------------------------------------


def test_recency_seconds_and_horizon(both: Callable[..., pd.DataFrame]) -> None:
    out = both(
        Recency(horizon_ms=90 * MS_PER_DAY),
        {"at": 0},
        {"at": 90_000},
        {"at": 90_000},
        {"at": 90_000 + 90 * MS_PER_DAY},
    )
    assert_values(column(out, "seconds_since_prev_tx"), [NAN, 90.0, 0.0, NAN])


# -- geo ---------------------------------------------------------------------------


def test_geo_paris_to_london(both: Callable[..., pd.DataFrame]) -> None:
    lat, lon = "latitude", "longitude"
    out = both(
        Geo(),
        {"at": 0, lat: PARIS[0], lon: PARIS[1]},
        {"at": 30 * MIN},  # no coordinates: skipped as an origin, NaN itself
        {"at": MS_PER_HOUR, lat: LONDON[0], lon: LONDON[1]},
        {
            "at": MS_PER_HOUR + 10_000,
            lat: PARIS[0],
            lon: PARIS[1],
        },  # 10 s later: dt floored at 60 s
        {
            "at": MS_PER_HOUR + 10_000 + 30 * MS_PER_DAY,
            lat: LONDON[0],
            lon: LONDON[1],
        },  # origin expired
    )
    km = column(out, "km_from_prev_tx")
    assert math.isnan(km[0]) and math.isnan(km[1]) and math.isnan(km[4])
    assert km[2] == pytest.approx(343.5, abs=0.2)
    assert km[3] == pytest.approx(km[2])
    kmh = column(out, "kmh_from_prev_tx")
    assert kmh[2] == pytest.approx(km[2])  # one hour apart
    assert kmh[3] == pytest.approx(km[3] * 60)  # 10 s counts as one minute


# -- novelty -----------------------------------------------------------------------


def test_novelty_horizon_and_missing_values(both: Callable[..., pd.DataFrame]) -> None:
    day = MS_PER_DAY
    out = both(
        Novelty(horizon_ms=90 * day),
        {"at": 0, "merchant_id": "m1", "device_id": "d1", "country": "FR"},
        {"at": day, "merchant_id": "m1", "country": "FR"},
        {"at": 2 * day, "merchant_id": "m2", "device_id": "d1", "country": "GB"},
        {
            "at": 92 * day,
            "merchant_id": "m2",
            "device_id": "d1",
        },  # exactly 90 d after m2/d1: new again
        {"at": 100 * day, "merchant_id": "m1", "device_id": "d1", "country": "FR"},
    )
    assert_values(column(out, "is_new_merchant"), [1, 0, 1, 1, 1])
    assert_values(column(out, "is_new_device"), [1, NAN, 0, 1, 0])
    assert_values(column(out, "is_new_country"), [1, 0, 1, NAN, 1])


# -- merchant_risk -----------------------------------------------------------------


def test_merchant_risk_respects_the_label_delay(both: Callable[..., pd.DataFrame]) -> None:
    day = MS_PER_DAY
    out = both(
        MerchantRisk(label_delay_ms=7 * day),
        {"at": 0, "is_fraud": 1},  # known at day 7
        {"at": 7 * day - 1},
        {"at": 7 * day},
        {"at": 8 * day, "is_fraud": 0, "label_at": 9 * day},  # explicit label time
        {"at": 9 * day},
        {"at": 37 * day},  # the fraud label is exactly 30 d old: out of 30 d, still in 90 d
    )
    assert_values(column(out, "merchant_known_labels_30d"), [0, 0, 1, 1, 2, 1])
    assert_values(column(out, "merchant_known_frauds_30d"), [0, 0, 1, 1, 1, 0])
    assert_values(column(out, "merchant_fraud_rate_30d"), [NAN, NAN, 1.0, 1.0, 0.5, 0.0])
    assert_values(column(out, "merchant_fraud_rate_90d"), [NAN, NAN, 1.0, 1.0, 0.5, 0.5])


def test_merchant_risk_never_sees_its_own_label(both: Callable[..., pd.DataFrame]) -> None:
    # A file saying the label was known before (or at) the payment: clamped to 1 ms after it.
    out = both(
        MerchantRisk(),
        {"at": 1000, "is_fraud": 1, "label_at": 0},
        {"at": 1000},
        {"at": 1001},
        {"at": 1001, "merchant_id": "m2"},
    )
    assert_values(column(out, "merchant_known_frauds_30d"), [0, 0, 1, 0])


def test_merchant_risk_ignores_labels_learnt_before_they_are_known() -> None:
    family = MerchantRisk()
    state = family.new_state()
    family.learn_label(LabelEvent("t0", "c1", "m1", 0, 5 * MS_PER_DAY, 1), state)
    tx = Transaction("t1", MS_PER_DAY, "c1", "m1", 1.0)
    assert family.transform_one(tx, state)["merchant_known_labels_30d"] == 0.0


def test_merchant_risk_is_the_same_when_a_merchants_transactions_arrive_out_of_order() -> None:
    # A merchant's transactions come from every partition, so a later one can be processed
    # before an earlier one; the earlier one must still see every label of its own window.
    family = MerchantRisk()
    labels = [LabelEvent(f"l{i}", "c1", "m1", 0, i * MS_PER_DAY, i % 2) for i in range(1, 40)]
    # Five days apart: what the demo's replay showed between partitions (a fetch of backlog each).
    late = Transaction("late", 125 * MS_PER_DAY, "c2", "m1", 1.0)
    early = Transaction("early", 120 * MS_PER_DAY - 6 * MS_PER_HOUR, "c3", "m1", 1.0)

    in_order = family.new_state()
    for label in labels:
        family.learn_label(label, in_order)
    expected = family.transform_one(early, in_order)
    assert expected["merchant_known_labels_30d"] == 0.0 and expected["merchant_fraud_rate_90d"] == 0.5

    out_of_order = family.new_state()
    for label in labels:
        family.learn_label(label, out_of_order)
    family.update_one(late, out_of_order)  # expires what the later transaction no longer needs
    assert family.transform_one(early, out_of_order) == expected


# -- calendar and channel_mcc --------------------------------------------------------


def test_calendar_saturday_afternoon_and_monday_night(both: Callable[..., pd.DataFrame]) -> None:
    saturday_1330 = -2 * MS_PER_DAY + 13 * MS_PER_HOUR + 30 * MIN
    out = both(Calendar(), {"at": saturday_1330}, {"at": 6 * MS_PER_HOUR - 1})
    assert_values(column(out, "hour_of_day"), [13.5, round((6 * MS_PER_HOUR - 1) / MS_PER_HOUR, 9)])
    assert_values(column(out, "day_of_week"), [5, 0])
    assert_values(column(out, "is_weekend"), [1, 0])
    assert_values(column(out, "is_night"), [0, 1])


def test_channel_and_mcc_codes(both: Callable[..., pd.DataFrame]) -> None:
    rows = [
        {"at": 0, "channel": "card_present", "mcc": "5411"},
        {"at": 1, "channel": "ecommerce", "mcc": "54a1"},
        {"at": 2, "channel": "ATM", "mcc": "０６０１"},  # full-width digits are not an mcc
        {"at": 3, "channel": "moto"},
        {"at": 4},
    ]
    out = both(ChannelMcc(), *rows)
    assert_values(column(out, "channel_code"), [0, 1, 2, NAN, NAN])
    assert_values(column(out, "mcc_code"), [5411, NAN, NAN, NAN, NAN])


# -- state stays bounded -------------------------------------------------------------


@pytest.mark.parametrize(
    "family",
    [CardVelocity(), AmountProfile(), Recency(), Geo(), Novelty(), MerchantRisk()],
    ids=repr,
)
def test_state_is_empty_after_the_horizon(family: Family) -> None:
    state = family.new_state()
    for i in range(50):
        tx = Transaction(
            f"t{i}",
            i * MIN,
            "c1",
            "m1",
            float(i),
            country="FR",
            device_id="d1",
            latitude=1.0,
            longitude=2.0,
        )
        family.learn_label(LabelEvent(f"t{i}", "c1", "m1", i * MIN, i * MIN + 1, i % 2), state)
        family.update_one(tx, state)
    assert not family.expire(state, 49 * MIN + 1)
    assert family.expire(state, 49 * MIN + family.horizon_ms + getattr(family, "expiry_slack_ms", 0) + 1)


def test_pipeline_names_and_groups() -> None:
    pipeline = FeaturePipeline.from_settings(FeatureSettings())
    assert len(pipeline.feature_names) == 16 + 5 + 1 + 2 + 3 + 4 + 4 + 2
    assert pipeline.feature_names[:4] == [
        "card_tx_count_1h",
        "card_amount_sum_1h",
        "card_amount_mean_1h",
        "card_amount_max_1h",
    ]
    assert pipeline.family_of["kmh_from_prev_tx"] == "geo"
    assert set(pipeline.family_of.values()) == {fam.name for fam in pipeline.families}
    assert pipeline.state_ttl_ms == 90 * MS_PER_DAY


def test_pipeline_rejects_duplicate_feature_names() -> None:
    with pytest.raises(ValueError, match="card_tx_count_1h"):
        FeaturePipeline([CardVelocity(), CardVelocity()])


def test_transform_many_keeps_index_and_dtypes() -> None:
    frame = frame_of({"at": 10}, {"at": 0}).set_axis(pd.Index(["late", "early"], name="key"))
    out = FeaturePipeline.from_settings().transform_many(frame)
    assert list(out.index) == ["late", "early"] and out.index.name == "key"
    assert (out.dtypes == np.float64).all()
    assert (
        out.loc["late", "card_tx_count_1h"] == 1.0 and out.loc["early", "card_tx_count_1h"] == 0.0
    )
