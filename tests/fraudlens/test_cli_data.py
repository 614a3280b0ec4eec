"""The data commands as a person runs them: clear errors, exit codes, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from features.io import read_transactions
from fraudlens.cli import app

runner = CliRunner()


def test_simulate_writes_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "tx.parquet"
    result = runner.invoke(app, ["simulate", "--cards", "60", "--days", "10", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = read_transactions(out).frame
    assert len(frame) > 500 and frame["transaction_id"].is_unique
    assert set(frame["channel"].dropna()) <= {"card_present", "ecommerce", "atm"}


def test_check_data_counts_rejects_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "bank.csv"
    data.write_text(
        "transaction_id,timestamp,card_id,merchant_id,amount\n"
        "a,2026-01-01T00:00:00,c,m,1\n"
        "b,2026-01-01T00:00:00,c,m,minus five\n"
        "c,2026-13-45,c,m,1\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["check-data", "--data", str(data), "--rejects", str(rejects)])
    assert result.exit_code == 1
    assert "3 rows read, 1 valid, 2 rejected" in result.output
    assert "amount: not a number" in result.output and "timestamp: unparseable time" in result.output
    assert [json.loads(line)["row"] for line in rejects.read_text().splitlines()] == [2, 3]


def test_check_data_clean_file_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "ok.jsonl"
    data.write_text(json.dumps({"transaction_id": "a", "timestamp": "2026-01-01T00:00:00Z", "card_id": "c",
                                "merchant_id": "m", "amount": 3.5}) + "\n")
    result = runner.invoke(app, ["check-data", "--data", str(data)])
    assert result.exit_code == 0 and "0 rejected" in result.output


def test_missing_file_and_bad_mapping_are_one_line_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check-data", "--data", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
    data = tmp_path / "d.csv"
    data.write_text("id\n1\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("amount_eur: amt\n")
    result = runner.invoke(app, ["check-data", "--data", str(data), "--columns", str(mapping)])
    assert result.exit_code == 2 and "unknown canonical field" in result.output
