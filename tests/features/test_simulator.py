"""The transaction simulator: contract, determinism, and the traces each fraud scenario leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.io import read_transactions, write_transactions
from features.schema import CANONICAL_FIELDS, normalize_frame
from features.simulation.world import CURRENCY_BY_COUNTRY, haversine_km
from features.simulator import SCENARIOS, simulate

N_CARDS, DAYS, SEED = 300, 20, 5
START = pd.Timestamp("2026-03-02", tz="UTC")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate(N_CARDS, DAYS, SEED, start="2026-03-02")


@pytest.fixture(scope="module")
def fraud(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["is_fraud"] == 1]


@pytest.fixture(scope="module")
def scenarios() -> pd.DataFrame:
    """More fraud, so that every scenario shows several incidents at this small size."""
    return simulate(N_CARDS, DAYS, SEED, start="2026-03-02", fraud_rate_scale=3.0)


def _scenario(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    rows = frame[frame["fraud_scenario"] == name]
    assert len(rows), f"no {name} rows"
    return rows


def _seen_before(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per row: whether the card used this value of ``column`` in an earlier row."""
    return frame.groupby(["card_id", column], sort=False).cumcount() > 0


# --- contract ---------------------------------------------------------------------------


def test_same_seed_gives_identical_frame(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(simulate(N_CARDS, DAYS, SEED, start="2026-03-02"), frame)


def test_different_seeds_differ(frame: pd.DataFrame) -> None:
    other = simulate(N_CARDS, DAYS, SEED + 1, start="2026-03-02")
    assert len(other) != len(frame) or not other["amount"].equals(frame["amount"])


def test_columns_and_dtypes(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == (*CANONICAL_FIELDS, "fraud_scenario", "customer_home_country")
    for name in ("transaction_id", "card_id", "merchant_id", "currency", "customer_id", "mcc", "channel",
                 "country", "device_id", "fraud_scenario"):
        assert frame[name].dtype == object, name
    for name in ("timestamp", "label_timestamp"):
        assert str(frame[name].dtype) == "datetime64[ns, UTC]", name
    for name in ("amount", "latitude", "longitude", "is_fraud"):
        assert frame[name].dtype == np.float64, name
    assert set(frame["is_fraud"].unique()) == {0.0, 1.0}
    assert frame["amount"].gt(0).all()


def test_ids_sorting_and_period(frame: pd.DataFrame) -> None:
    assert frame["transaction_id"].is_unique
    assert frame["transaction_id"].str.fullmatch(r"tx-\d{9}").all()
    assert frame["card_id"].str.fullmatch(r"card-\d{6}").all()
    assert frame["merchant_id"].str.fullmatch(r"mer-\d{5}").all()
    assert frame["customer_id"].str.fullmatch(r"cust-\d{6}").all()
    assert frame["device_id"].dropna().str.fullmatch(r"dev-\d{7}").all()
    assert frame["mcc"].str.fullmatch(r"\d{4}").all()
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].min() >= START
    assert frame["timestamp"].max() < START + pd.Timedelta(days=DAYS)
    assert frame["card_id"].nunique() > 0.95 * N_CARDS
    cards_per_customer = frame.groupby("customer_id")["card_id"].nunique()
    assert set(cards_per_customer.unique()) == {1, 2}


def test_passes_the_schema_without_rejects(frame: pd.DataFrame) -> None:
    accepted, rejects = normalize_frame(frame)
    assert len(rejects) == 0
    pd.testing.assert_frame_equal(accepted, frame)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trips_through_files(frame: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"sim{suffix}"
    write_transactions(frame, path)
    result = read_transactions(path)
    assert result.n_rejected == 0
    back = result.frame
    pd.testing.assert_frame_equal(back[list(CANONICAL_FIELDS)], frame[list(CANONICAL_FIELDS)])
    # CSV reads an empty string back as missing.
    assert back["fraud_scenario"].fillna("").tolist() == frame["fraud_scenario"].tolist()


def test_channels_carry_device_or_coordinates(frame: pd.DataFrame) -> None:
    online = frame[frame["channel"] == "ecommerce"]
    physical = frame[frame["channel"] != "ecommerce"]
    assert set(frame["channel"].unique()) == {"card_present", "ecommerce", "atm"}
    assert online["latitude"].isna().all() and online["longitude"].isna().all()
    assert online["device_id"].notna().all()
    assert physical["latitude"].notna().all() and physical["longitude"].notna().all()
    assert physical["device_id"].isna().all()
    assert (frame.loc[frame["channel"] == "atm", "mcc"] == "6011").all()


def test_currency_follows_the_country_in_person(frame: pd.DataFrame) -> None:
    physical = frame[frame["channel"] != "ecommerce"]
    assert (physical["currency"] == physical["country"].map(CURRENCY_BY_COUNTRY)).all()
    assert {"EUR", "GBP", "USD"} <= set(frame["currency"].unique())


def test_daily_rhythm(frame: pd.DataFrame) -> None:
    # Europeans at home: few payments at 3-5 in the morning, many at 5-7 pm (UTC+0/+1).
    europe = frame[frame["customer_home_country"].isin(["FR", "DE", "ES", "IT", "NL", "GB"]) & (frame["is_fraud"] == 0)]
    hour = europe["timestamp"].dt.hour
    assert hour.between(2, 4).sum() * 5 < hour.between(16, 18).sum()


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="n_cards"):
        simulate(0, 5, 1)
    with pytest.raises(ValueError, match="days"):
        simulate(10, 0, 1)
    with pytest.raises(ValueError, match="fraud_rate_scale"):
        simulate(10, 5, 1, fraud_rate_scale=-1)
    with pytest.raises(ValueError, match="start"):
        simulate(10, 5, 1, start="not a date")


# --- labels and rates -------------------------------------------------------------------


def test_labels(frame: pd.DataFrame, fraud: pd.DataFrame) -> None:
    assert (frame["fraud_scenario"] != "").eq(frame["is_fraud"] == 1).all()
    delay = fraud["label_timestamp"] - fraud["timestamp"]
    assert (delay >= pd.Timedelta(days=1)).all() and (delay <= pd.Timedelta(days=30)).all()
    assert delay.median() < pd.Timedelta(days=14)  # skewed: most chargebacks come early
    assert frame.loc[frame["is_fraud"] == 0, "label_timestamp"].isna().all()


def test_fraud_rate_is_realistic_and_scales() -> None:
    base = simulate(1000, 30, 2)
    rate = base["is_fraud"].mean()
    assert 0.003 <= rate <= 0.01
    assert simulate(1000, 30, 2, fraud_rate_scale=0.0)["is_fraud"].sum() == 0
    assert simulate(1000, 30, 2, fraud_rate_scale=3.0)["is_fraud"].mean() > 2 * rate


def test_every_scenario_is_present(fraud: pd.DataFrame) -> None:
    assert set(fraud["fraud_scenario"].unique()) == set(SCENARIOS)


# --- scenario traces --------------------------------------------------------------------


def test_card_testing_is_a_burst_of_tiny_amounts_at_new_merchants(scenarios: pd.DataFrame) -> None:
    rows = _scenario(scenarios, "card_testing")
    probes = rows[rows["amount"] <= 3.0]
    assert len(probes) >= 0.6 * len(rows)
    assert probes["amount"].between(0.5, 3.0).all()
    assert (probes["channel"] == "ecommerce").any()
    assert probes["channel"].isin(["ecommerce", "card_present"]).all()
    # Online, bots hop between merchants the card never used (a cloned stripe may stay at one pump).
    online = probes[probes["channel"] == "ecommerce"]
    assert (~_seen_before(scenarios, "merchant_id")[online.index]).mean() >= 0.8
    gaps = probes.groupby("card_id")["timestamp"].diff().dropna()
    assert len(gaps) and gaps.median() < pd.Timedelta(minutes=10)
    # Most bursts hold several probes on one card.
    assert probes.groupby("card_id").size().median() >= 2


def test_account_takeover_uses_a_new_device_from_abroad(scenarios: pd.DataFrame) -> None:
    rows = _scenario(scenarios, "account_takeover")
    assert (rows["channel"] == "ecommerce").all()
    assert (rows["country"] != rows["customer_home_country"]).all()
    legit = scenarios[scenarios["is_fraud"] == 0]
    usual_country = legit.groupby("card_id")["country"].agg(lambda s: s.mode().iloc[0])
    assert (rows["country"] != rows["card_id"].map(usual_country)).all()
    legit_devices = set(zip(legit["card_id"], legit["device_id"], strict=True))
    assert not any((c, d) in legit_devices for c, d in zip(rows["card_id"], rows["device_id"], strict=True))
    first = rows.groupby("card_id").head(1)
    assert not _seen_before(scenarios, "device_id")[first.index].any()
    assert (rows["amount"] >= 100).all()


def test_compromised_merchant_frauds_concentrate_on_few_merchants(scenarios: pd.DataFrame) -> None:
    rows = _scenario(scenarios, "compromised_merchant")
    per_merchant = rows["merchant_id"].value_counts()
    assert len(per_merchant) <= 0.02 * scenarios["merchant_id"].nunique()
    assert per_merchant.mean() >= 3  # card testing, by contrast, hops between merchants
    assert (rows["channel"] != "atm").all()
    # From its first fraud on, a good share of a compromised merchant's payments is fraud.
    since_first = scenarios["timestamp"] >= scenarios["merchant_id"].map(rows.groupby("merchant_id")["timestamp"].min())
    after = scenarios[since_first]
    share = after.groupby("merchant_id")["is_fraud"].agg(["mean", "size"])
    assert (share.loc[share["size"] >= 10, "mean"] >= 0.05).all()
    assert after["is_fraud"].mean() > 5 * scenarios["is_fraud"].mean()


def test_skimmed_card_is_impossible_travel(scenarios: pd.DataFrame) -> None:
    _scenario(scenarios, "skimmed_card")
    physical = scenarios[scenarios["channel"] != "ecommerce"].sort_values(["card_id", "timestamp"], kind="stable")
    previous = physical.groupby("card_id")[["timestamp", "latitude", "longitude", "fraud_scenario"]].shift()
    first = (physical["fraud_scenario"] == "skimmed_card") & previous["timestamp"].notna() & (previous["fraud_scenario"] != "skimmed_card")
    assert first.sum() >= 1
    prev, cur = previous[first], physical[first]
    km = haversine_km(prev["latitude"].to_numpy(), prev["longitude"].to_numpy(), cur["latitude"].to_numpy(), cur["longitude"].to_numpy())
    hours = (cur["timestamp"] - prev["timestamp"]).dt.total_seconds().to_numpy() / 3600
    assert (km > 1500).all()
    assert (km / np.maximum(hours, 1 / 60) > 500).all()
    assert (hours <= 2).all()


def test_high_amount_is_far_above_the_cards_habit(scenarios: pd.DataFrame) -> None:
    rows = _scenario(scenarios, "high_amount")
    median = scenarios[scenarios["is_fraud"] == 0].groupby("card_id")["amount"].median()
    assert (rows["amount"] > 5 * rows["card_id"].map(median)).all()
    assert set(rows["mcc"]) <= {"5732", "5944"}


def test_legit_traffic_holds_look_alikes(frame: pd.DataFrame) -> None:
    legit = frame[frame["is_fraud"] == 0]
    median = legit.groupby("card_id")["amount"].transform("median")
    assert (legit["amount"] > 10 * median).sum() > 0  # big-ticket purchases
    assert (legit["amount"] < 3).sum() > 0  # fares, apps
    assert (legit["country"] != legit["customer_home_country"]).sum() > 0  # travel
    online = legit[(legit["channel"] == "ecommerce") & (legit["timestamp"] > START + pd.Timedelta(days=7))]
    assert (~_seen_before(legit, "device_id")[online.index]).sum() > 0  # new phones mid-period
