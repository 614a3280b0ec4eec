"""The transaction contract: one record at a time (online) and whole frames (offline)."""

from __future__ import annotations

import pandas as pd
import pytest

from features.schema import SchemaError, Transaction, normalize_frame

VALID = {
    "transaction_id": "t1",
    "timestamp": "2026-03-01T10:00:00",
    "card_id": "card-1",
    "merchant_id": "m-1",
    "amount": "12.50",
}


def test_naive_timestamp_is_utc_and_aware_is_converted() -> None:
    naive = Transaction.from_mapping(VALID)
    aware = Transaction.from_mapping({**VALID, "timestamp": "2026-03-01T11:00:00+01:00"})
    assert naive.timestamp_ms == aware.timestamp_ms == 1772359200000
    assert naive.timestamp.isoformat() == "2026-03-01T10:00:00+00:00"


def test_numeric_time_is_epoch_seconds() -> None:
    assert Transaction.from_mapping({**VALID, "timestamp": 1772359200}).timestamp_ms == 1772359200000


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"amount": None}, "amount", "missing required field"),
        ({"card_id": "  "}, "card_id", "missing required field"),
        ({"amount": "12,5x"}, "amount", "not a number"),
        ({"amount": -1}, "amount", "negative amount"),
        ({"amount": float("inf")}, "amount", "not a finite number"),
        ({"amount": True}, "amount", "not a number"),
        ({"timestamp": "yesterday-ish"}, "timestamp", "unparseable time"),
        ({"latitude": 91}, "latitude", "out of range"),
        ({"longitude": "east"}, "longitude", "not a number"),
        ({"is_fraud": "maybe"}, "is_fraud", "expected 0/1/true/false"),
        ({"card_id": {"nested": 1}}, "card_id", "expected a string"),
    ],
)
def test_bad_record_names_field_and_reason(change: dict, field: str, reason: str) -> None:
    with pytest.raises(SchemaError) as caught:
        Transaction.from_mapping({**VALID, **change})
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert field in str(caught.value)


def test_missing_field_entirely() -> None:
    record = dict(VALID)
    del record["merchant_id"]
    with pytest.raises(SchemaError, match="'merchant_id': missing required field"):
        Transaction.from_mapping(record)


def test_not_a_mapping() -> None:
    with pytest.raises(SchemaError, match="expected an object"):
        Transaction.from_mapping(["t1"])  # type: ignore[arg-type]


def test_record_round_trip() -> None:
    tx = Transaction.from_mapping({**VALID, "is_fraud": "true", "channel": " ECOMMERCE ", "country": "fr"})
    assert tx.is_fraud == 1 and tx.channel == "ecommerce" and tx.country == "FR"
    assert Transaction.from_mapping(tx.to_record()) == tx


def _raw(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype(object)


def test_frame_rejects_each_bad_row_once_with_its_first_failing_field() -> None:
    rows = [
        VALID,
        {**VALID, "transaction_id": "t2", "amount": "abc", "timestamp": "bad"},
        {**VALID, "transaction_id": "t3", "amount": "-5"},
        {**VALID, "transaction_id": "t1"},  # duplicate id
        {**VALID, "transaction_id": "t4", "merchant_id": None},
        {**VALID, "transaction_id": "t5", "amount": "7"},
    ]
    good, rejects = normalize_frame(_raw(rows))
    assert list(good["transaction_id"]) == ["t1", "t5"]
    table = rejects.frame.set_index("row")
    # Canonical order is transaction_id, timestamp, card_id, merchant_id, amount: the time fails first.
    assert table.loc[2, "field"] == "timestamp" and table.loc[2, "reason"] == "unparseable time"
    assert table.loc[3, "reason"].startswith("negative amount")
    assert table.loc[4, "field"] == "transaction_id" and "duplicate" in table.loc[4, "reason"]
    assert table.loc[5, "field"] == "merchant_id" and table.loc[5, "reason"] == "missing required field"
    assert table.loc[2, "record"]["amount"] == "abc"  # the raw record travels with the reject
    assert len(good) + len(rejects) == len(rows)


def test_frame_dtypes_and_optional_fields_absent() -> None:
    good, rejects = normalize_frame(_raw([VALID]))
    assert len(rejects) == 0
    assert str(good["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert good["amount"].dtype == "float64"
    assert good["latitude"].isna().all() and good["is_fraud"].isna().all()
    assert good["channel"].isna().all()


def test_frame_keeps_extra_columns() -> None:
    good, _ = normalize_frame(_raw([{**VALID, "fraud_scenario": "card_testing"}]))
    assert good["fraud_scenario"].tolist() == ["card_testing"]


def test_frame_missing_required_column_is_clear() -> None:
    raw = _raw([VALID]).drop(columns=["amount"])
    with pytest.raises(SchemaError, match="'amount': required column not found"):
        normalize_frame(raw)
