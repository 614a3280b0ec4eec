"""Reading any transaction file through a column mapping; bad rows stop the read or go to a rejects file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.io import (
    ColumnMapping,
    ColumnMappingError,
    LabelsError,
    apply_labels,
    read_transactions,
    write_transactions,
)
from features.schema import SchemaError

CSV = """id,when,card,shop,amt,fraud
a1,2026-01-01 09:00:00,c1,s1,10.00,0
a2,2026-01-01 09:05:00,c1,s2,not-money,1
a3,2026-01-01 09:06:00,c2,s1,-4,0
a4,2026-01-02T10:00:00Z,c2,s3,99.5,1
"""

MAPPING = "transaction_id: id\ntimestamp: when\ncard_id: card\nmerchant_id: shop\namount: amt\nis_fraud: fraud\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, ColumnMapping]:
    data = tmp_path / "bank.csv"
    data.write_text(CSV)
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text(MAPPING)
    return data, ColumnMapping.from_yaml(mapping_file)


def test_raise_mode_names_row_field_reason(files: tuple[Path, ColumnMapping]) -> None:
    data, mapping = files
    with pytest.raises(SchemaError) as caught:
        read_transactions(data, columns=mapping)
    assert caught.value.row == 2 and caught.value.field == "amount"
    assert "not a number" in str(caught.value) and "2 bad row(s)" in str(caught.value)


def test_skip_mode_writes_every_reject_and_counts(files: tuple[Path, ColumnMapping], tmp_path: Path) -> None:
    data, mapping = files
    rejects_file = tmp_path / "rejects.jsonl"
    result = read_transactions(data, columns=mapping, on_error="skip", rejects_path=rejects_file)
    assert result.n_read == 4 and result.n_rejected == 2
    assert result.frame["transaction_id"].tolist() == ["a1", "a4"]
    lines = [json.loads(line) for line in rejects_file.read_text().splitlines()]
    assert [(r["row"], r["field"], r["reason"]) for r in lines] == [
        (2, "amount", "not a number"),
        (3, "amount", "negative amount (the minimum is 0)"),
    ]
    assert lines[0]["record"]["amount"] == "not-money" and lines[0]["source"] == str(data)


def test_default_rejects_path_is_beside_the_input(files: tuple[Path, ColumnMapping]) -> None:
    data, mapping = files
    result = read_transactions(data, columns=mapping, on_error="skip")
    assert result.rejects_path == data.with_name("bank.csv.rejects.jsonl")
    assert result.rejects_path.exists()


def test_without_mapping_the_missing_column_is_named_with_a_hint(files: tuple[Path, ColumnMapping]) -> None:
    data, _ = files
    with pytest.raises(SchemaError, match="--columns"):
        read_transactions(data)


def test_mapping_errors_are_clear(tmp_path: Path, files: tuple[Path, ColumnMapping]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("amount_eur: amt\n")
    with pytest.raises(ColumnMappingError, match="unknown canonical field"):
        ColumnMapping.from_yaml(bad)
    with pytest.raises(ColumnMappingError, match="does not exist"):
        ColumnMapping.from_yaml(tmp_path / "nope.yaml")
    data, _ = files
    wrong = ColumnMapping({"amount": "euros"})
    with pytest.raises(ColumnMappingError, match="column 'euros' .*not found"):
        read_transactions(data, columns=wrong)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_round_trip_every_format(files: tuple[Path, ColumnMapping], tmp_path: Path, suffix: str) -> None:
    data, mapping = files
    frame = read_transactions(data, columns=mapping, on_error="skip").frame
    out = tmp_path / f"copy{suffix}"
    write_transactions(frame, out)
    again = read_transactions(out).frame
    pd.testing.assert_frame_equal(again[frame.columns], frame, check_dtype=False)
    assert str(again["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_transactions(tmp_path / "none.csv")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unknown file type"):
        read_transactions(odd)


def _labelled_frame(files: tuple[Path, ColumnMapping]) -> pd.DataFrame:
    data, mapping = files
    return read_transactions(data, columns=mapping, on_error="skip").frame  # a1 (legit), a4 (fraud)


def test_labels_overlay_decisions_and_their_time(files: tuple[Path, ColumnMapping], tmp_path: Path) -> None:
    frame = _labelled_frame(files)
    labels = tmp_path / "labels.csv"
    labels.write_text("transaction_id,is_fraud,label_timestamp\na1,1,2026-01-05T12:00:00+00:00\na4,0,\n")
    merged = apply_labels(frame, labels)
    assert (merged.n_labels, merged.n_matched, merged.n_changed) == (2, 2, 2)
    out = merged.frame.set_index("transaction_id")
    assert out.loc["a1", "is_fraud"] == 1.0 and out.loc["a4", "is_fraud"] == 0.0
    assert out.loc["a1", "label_timestamp"] == pd.Timestamp("2026-01-05T12:00:00Z")
    assert pd.isna(out.loc["a4", "label_timestamp"])
    assert frame.set_index("transaction_id").loc["a1", "is_fraud"] == 0.0  # the input frame is not modified


def test_labels_must_name_known_transactions_and_valid_values(files: tuple[Path, ColumnMapping], tmp_path: Path) -> None:
    frame = _labelled_frame(files)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("transaction_id,is_fraud\na1,1\nzz9,1\n")
    with pytest.raises(LabelsError, match="1 label\\(s\\) for transactions not in the data, e.g. 'zz9'"):
        apply_labels(frame, unknown)
    bad = tmp_path / "bad.csv"
    bad.write_text("transaction_id,is_fraud\na1,perhaps\n")
    with pytest.raises(LabelsError, match="row 1: field 'is_fraud'"):
        apply_labels(frame, bad)
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("transaction_id,decision\na1,fraud\n")
    with pytest.raises(LabelsError, match="needs columns transaction_id and is_fraud"):
        apply_labels(frame, no_label)


def _parquet(path: Path, timestamp: Any, **columns: Any) -> Path:
    """A two-row Parquet file whose timestamp column is the given pyarrow array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"transaction_id": ["p1", "p2"], "card_id": ["c1", "c2"], "merchant_id": ["m1", "m2"], "amount": [1.0, 2.0]}
    pq.write_table(pa.table({**base, **columns, "timestamp": timestamp}), path)
    return path


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        # int64 epoch nanoseconds (a common export) read as the contract's epoch seconds
        (lambda pa: pa.array([1_767_225_600 * 10**9, 1_767_225_700], pa.int64()),
         "numbers are epoch seconds and this looks like epoch nanoseconds"),
        (lambda pa: pa.array([1e20, 1_767_225_700.0], pa.float64()), "after the latest allowed time"),
        # Parquet timestamps in microseconds go far beyond pandas' nanosecond range
        (lambda pa: pa.array([datetime(9999, 1, 1), datetime(2026, 1, 1)], pa.timestamp("us")),
         "after the latest allowed time"),
        (lambda pa: pa.array([datetime(1999, 12, 31), datetime(2026, 1, 1)], pa.timestamp("us", tz="UTC")),
         "before the earliest allowed time 2000-01-01T00:00:00Z"),
        (lambda pa: pa.array([datetime(1, 1, 1), datetime(2026, 1, 1)], pa.timestamp("s")),
         "before the earliest allowed time 2000-01-01T00:00:00Z"),
    ],
    ids=["int64 nanoseconds", "float 1e20", "year 9999 (us)", "1999 (us, UTC)", "year 1 (s)"],
)
def test_parquet_times_out_of_range_are_rejected_rows_not_a_traceback(
    tmp_path: Path, timestamp: Any, reason: str
) -> None:
    import pyarrow as pa

    data = _parquet(tmp_path / "times.parquet", timestamp(pa))
    result = read_transactions(data, on_error="skip")
    assert result.frame["transaction_id"].tolist() == ["p2"]
    assert str(result.frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    row = result.rejects.frame.iloc[0]
    assert (row["row"], row["field"]) == (1, "timestamp") and reason in row["reason"], row["reason"]
    with pytest.raises(SchemaError, match=f"row 1: field 'timestamp': .*{re.escape(reason)}"):
        read_transactions(data)


def test_parquet_bad_amounts_and_text_are_rejected_rows(tmp_path: Path) -> None:
    import pyarrow as pa

    stamps = pa.array([datetime(2026, 1, 1), datetime(2026, 1, 1)], pa.timestamp("us"))
    data = _parquet(tmp_path / "amounts.parquet", stamps, amount=[1e308, 3.0], mcc=["5411", "5" * 10_000])
    result = read_transactions(data, on_error="skip")
    assert result.frame.empty
    assert result.rejects.frame[["row", "field", "reason"]].values.tolist() == [
        [1, "amount", "above the maximum amount 1,000,000,000"],
        [2, "mcc", "longer than 8 characters"],
    ]


def test_jsonl_booleans_and_control_characters_are_rejected_rows(tmp_path: Path) -> None:
    data = tmp_path / "tx.jsonl"
    rows = [
        {"transaction_id": "j1", "timestamp": "2026-01-01T00:00:00Z", "card_id": True, "merchant_id": "m", "amount": 1},
        {"transaction_id": "j2", "timestamp": "2026-01-01T00:00:00Z", "card_id": "c", "merchant_id": "m", "amount": True},
        {"transaction_id": "j3", "timestamp": "2026-01-01T00:00:00Z", "card_id": "c\u001b[2J", "merchant_id": "m",
         "amount": 1},
        {"transaction_id": "j4", "timestamp": 1e20, "card_id": "c", "merchant_id": "m", "amount": 1},
        {"transaction_id": "j5", "timestamp": 1767225600, "card_id": "c", "merchant_id": "m", "amount": 1},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_transactions(data, on_error="skip")
    assert result.frame["transaction_id"].tolist() == ["j5"]
    assert [tuple(r) for r in result.rejects.frame[["field", "reason"]].values.tolist()[:3]] == [
        ("card_id", "expected a string, got bool"),
        ("amount", "not a number"),
        ("card_id", "contains control characters"),
    ]
    assert result.rejects.frame["reason"].iloc[3].startswith("after the latest allowed time")


def test_limits_reach_the_file_readers_and_the_labels(files: tuple[Path, ColumnMapping], tmp_path: Path) -> None:
    from features.schema import ValidationLimits

    data, mapping = files
    strict = ValidationLimits(max_amount=50)
    result = read_transactions(data, columns=mapping, on_error="skip", limits=strict)
    assert result.frame["transaction_id"].tolist() == ["a1"]
    assert ("a4" in str(result.rejects.frame["record"].tolist())
            and "above the maximum amount 50" in result.rejects.frame["reason"].tolist())
    labels = tmp_path / "labels.csv"
    labels.write_text("transaction_id,is_fraud,label_timestamp\na1,1,2026-01-05T12:00:00+00:00\n")
    late = ValidationLimits(earliest_time=datetime(2026, 2, 1, tzinfo=UTC))
    with pytest.raises(LabelsError, match="field 'label_timestamp': before the earliest allowed time 2026-02-01"):
        apply_labels(result.frame, labels, limits=late)
