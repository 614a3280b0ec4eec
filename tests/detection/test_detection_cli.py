"""``fraudlens train | score | evaluate | baselines`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from detection.bundle import REQUIRED_FILES
from detection.metrics import EVALUATION_KEYS
from features.io import write_transactions
from fraudlens.cli import app

# Keep the CLI runs quick and independent of the developer's environment.
ENV = {"FRAUDLENS_CONFIG": "", "FRAUDLENS_MODEL__MAX_ROUNDS": "200", "FRAUDLENS_MODEL__EARLY_STOPPING_ROUNDS": "20",
       "FRAUDLENS_MODEL__N_THREADS": "1"}


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def train_args(windows: Any) -> list[str]:
    return ["--train-start", str(windows.train_start), "--train-end", str(windows.train_end)]


@pytest.fixture(scope="module")
def window_args(windows: Any) -> list[str]:
    return ["--start", str(windows.test_start), "--end", str(windows.test_end)]


def _train(data: Path, out: Path, train_args: list[str], *extra: object) -> Path:
    stdout = _ok(invoke("train", "--data", data, *train_args, "--out", out, *extra))
    return Path(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cli_bundle(tmp_path_factory: pytest.TempPathFactory, sim_csv: Path, train_args: list[str]) -> Path:
    return _train(sim_csv, tmp_path_factory.mktemp("cli-models"), train_args, "--label-delay-days", "5", "--seed", "3")


def test_train_prints_the_bundle_directory_last(cli_bundle: Path) -> None:
    assert cli_bundle.is_dir() and cli_bundle.name.startswith("fl-")
    assert all((cli_bundle / name).is_file() for name in REQUIRED_FILES)
    manifest = json.loads((cli_bundle / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["params"]["seed"] == 3
    assert manifest["data"]["source"].endswith("transactions.csv") and len(manifest["data"]["sha256"]) == 64
    assert json.loads((cli_bundle / "feature_spec.json").read_text())["feature_settings"]["label_delay_days"] == 5


def test_score_writes_every_window_transaction(
    cli_bundle: Path, sim_csv: Path, sim_frame: pd.DataFrame, windows: Any, window_args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "scores" / "scores.csv"
    _ok(invoke("score", "--model", cli_bundle, "--data", sim_csv, *window_args, "--out", out))
    scores = pd.read_csv(out, dtype={"transaction_id": str})
    assert list(scores.columns) == ["transaction_id", "score"]
    assert len(scores) == len(windows.test_ids(sim_frame)) and set(scores["transaction_id"]) == windows.test_ids(sim_frame)
    assert scores["score"].between(0, 1).all()


def test_evaluate_prints_the_metrics_as_json(cli_bundle: Path, sim_csv: Path, window_args: list[str]) -> None:
    result = json.loads(_ok(invoke("evaluate", "--model", cli_bundle, "--data", sim_csv, *window_args, "--k", "20")))
    assert set(result) == set(EVALUATION_KEYS)
    assert result["n_frauds"] > 0 and result["auc_roc"] > 0.7


def test_baselines_compare_three_models_out_of_time(sim_csv: Path, windows: Any, train_args: list[str]) -> None:
    test = ["--test-start", str(windows.test_start), "--test-end", str(windows.test_end)]
    report = json.loads(_ok(invoke("baselines", "--data", sim_csv, *train_args, *test)))
    assert set(report["models"]) == {"engineered_xgboost", "logistic_regression", "raw_xgboost"}
    for metrics in report["models"].values():
        assert set(EVALUATION_KEYS) <= set(metrics)
    assert report["n_test_frauds"] > 0


@pytest.fixture(scope="module")
def required_only(tmp_path_factory: pytest.TempPathFactory, sim_frame: pd.DataFrame) -> tuple[Path, Path]:
    """The five required fields plus the label, under a bank's own column names, as CSV."""
    names = {"transaction_id": "TXN_REF", "timestamp": "POSTED_AT", "card_id": "PAN_TOKEN",
             "merchant_id": "MERCH", "amount": "AMT", "is_fraud": "CHARGEBACK"}
    directory = tmp_path_factory.mktemp("bank")
    data = directory / "bank.csv"
    write_transactions(sim_frame[list(names)].rename(columns=names), data)
    mapping = directory / "columns.yaml"
    mapping.write_text("".join(f"{canon}: {source}\n" for canon, source in names.items()))
    return data, mapping


def test_required_fields_only_through_a_column_mapping(
    required_only: tuple[Path, Path], sim_frame: pd.DataFrame, windows: Any, train_args: list[str],
    window_args: list[str], tmp_path: Path,
) -> None:
    data, mapping = required_only
    bundle = _train(data, tmp_path / "models", train_args, "--columns", mapping)
    out = tmp_path / "scores.csv"
    _ok(invoke("score", "--model", bundle, "--data", data, "--columns", mapping, *window_args, "--out", out))
    assert set(pd.read_csv(out, dtype={"transaction_id": str})["transaction_id"]) == windows.test_ids(sim_frame)
    result = json.loads(_ok(invoke("evaluate", "--model", bundle, "--data", data, "--columns", mapping, *window_args)))
    assert result["n_transactions"] == len(windows.test_ids(sim_frame))
    assert json.loads((bundle / "manifest.json").read_text())["data"]["columns"]["amount"] == "AMT"


def _bad_inputs(
    tmp_path: Path, sim_csv: Path, required_only: tuple[Path, Path], windows: Any
) -> dict[str, list[object]]:
    data, _ = required_only
    train_args = ["--train-start", str(windows.train_start), "--train-end", str(windows.train_end)]
    window_args = ["--start", str(windows.test_start), "--end", str(windows.test_end)]
    absent_column = tmp_path / "absent.yaml"
    absent_column.write_text("amount: NOT_THERE\n")
    unknown_field = tmp_path / "unknown.yaml"
    unknown_field.write_text("amounnt: AMT\n")
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text("transaction_id,timestamp,card_id,merchant_id,amount,is_fraud\n"
                       "t1,2026-01-01T10:00:00,c1,m1,-5,0\n")
    out = tmp_path / "out"
    return {
        "does not exist": ["train", "--data", tmp_path / "missing.csv", *train_args, "--out", out],
        "'NOT_THERE' (mapped to 'amount') not found": ["train", "--data", data, "--columns", absent_column,
                                                       *train_args, "--out", out],
        "unknown canonical field": ["train", "--data", data, "--columns", unknown_field, *train_args, "--out", out],
        "required column not found": ["train", "--data", data, *train_args, "--out", out],
        "negative amount": ["train", "--data", bad_row, *train_args, "--out", out],
        "expected a date as YYYY-MM-DD": ["train", "--data", sim_csv, "--train-start", "01/02/2026",
                                          "--train-end", str(windows.train_end), "--out", out],
        "is before": ["train", "--data", sim_csv, "--train-start", str(windows.train_end), "--train-end",
                      str(windows.train_start), "--out", out],
        "no labelled transactions": ["train", "--data", sim_csv, "--train-start", "2030-01-01", "--train-end",
                                     "2030-01-31", "--out", out],
        "model bundle": ["score", "--model", tmp_path / "no-model", "--data", sim_csv, *window_args,
                         "--out", tmp_path / "s.csv"],
        "label_delay_days": ["train", "--data", sim_csv, *train_args, "--out", out, "--label-delay-days", "-1"],
    }


def test_user_errors_are_one_line_and_exit_2(
    tmp_path: Path, sim_csv: Path, required_only: tuple[Path, Path], windows: Any
) -> None:
    for message, args in _bad_inputs(tmp_path, sim_csv, required_only, windows).items():
        result = invoke(*args)
        stderr = result.stderr.strip()
        assert result.exit_code == 2, (message, result.exit_code, stderr)
        # Progress lines may come first; the error itself is the one last line, without a traceback.
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and stderr.endswith(errors[0]) and "Traceback" not in stderr, stderr
        assert message in errors[0], (message, stderr)
