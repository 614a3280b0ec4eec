"""``fraudlens validate`` through the real CLI app: a report by registered version id, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from detection import ModelBundle
from features.io import write_transactions
from fraudlens.cli import app


def invoke(registry: Path, *args: object) -> Result:
    env = {"FRAUDLENS_CONFIG": "", "FRAUDLENS_MODEL__REGISTRY_DIR": str(registry)}
    return CliRunner().invoke(app, ["validate", *map(str, args)], env=env)


@pytest.fixture
def registry(tmp_path: Path, tiny_bundle: ModelBundle) -> Path:
    root = tmp_path / "models"
    shutil.copytree(Path(tiny_bundle.path), root / tiny_bundle.version)
    return root


@pytest.fixture
def window_args(windows: Any) -> list[str]:
    return ["--start", str(windows.test_start), "--end", str(windows.test_end)]


def test_validate_by_version_id_writes_the_report_and_the_registry_copy(
    registry: Path, tiny_bundle: ModelBundle, sim_csv: Path, window_args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = invoke(registry, "--model", tiny_bundle.version, "--data", sim_csv, *window_args, "--out", out,
                    "--resamples", 20, "--no-reproduce", "--alerts", 3)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    report = json.loads((out / "report.json").read_text())
    assert report["model_version"] == tiny_bundle.version
    assert report["checks"]["reproducible"] is None and report["reproducibility"]["performed"] is False
    assert report["performance"]["average_precision"]["n_resamples"] == 20
    copy = registry / "validation" / tiny_bundle.version
    assert (copy / "report.json").read_bytes() == (out / "report.json").read_bytes()
    assert (copy / "report.html").is_file()
    assert "segment(s) flagged" in result.stderr and "copied to the registry" in result.stderr


def _one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_model_is_a_clear_error(registry: Path, sim_csv: Path, window_args: list[str], tmp_path: Path) -> None:
    result = invoke(registry, "--model", "fl-000000000000", "--data", sim_csv, *window_args, "--out", tmp_path)
    _one_line_error(result, "fl-000000000000", "neither a bundle directory nor a version")


def test_window_outside_the_data_is_a_clear_error(registry: Path, tiny_bundle: ModelBundle, sim_csv: Path,
                                                  tmp_path: Path) -> None:
    result = invoke(registry, "--model", tiny_bundle.path, "--data", sim_csv, "--start", "2030-01-01",
                    "--end", "2030-01-31", "--out", tmp_path)
    _one_line_error(result, "outside the data")


def test_data_without_labels_is_a_clear_error(registry: Path, tiny_bundle: ModelBundle, sim_frame: pd.DataFrame,
                                              window_args: list[str], tmp_path: Path) -> None:
    data = tmp_path / "unlabelled.csv"
    write_transactions(sim_frame.drop(columns=["is_fraud", "label_timestamp"]), data)
    result = invoke(registry, "--model", tiny_bundle.path, "--data", data, *window_args, "--out", tmp_path / "r")
    _one_line_error(result, "no fraud labels")


def test_unknown_columns_in_the_mapping_are_a_clear_error(registry: Path, tiny_bundle: ModelBundle, sim_csv: Path,
                                                          window_args: list[str], tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text("amount: amt_eur\nfavourite_colour: colour\n")
    result = invoke(registry, "--model", tiny_bundle.path, "--data", sim_csv, "--columns", mapping, *window_args,
                    "--out", tmp_path / "r")
    _one_line_error(result, "favourite_colour")
    mapping.write_text("amount: amt_eur\n")
    result = invoke(registry, "--model", tiny_bundle.path, "--data", sim_csv, "--columns", mapping, *window_args,
                    "--out", tmp_path / "r")
    _one_line_error(result, "amt_eur", "not found")


def test_missing_data_file_is_a_clear_error(registry: Path, tiny_bundle: ModelBundle, window_args: list[str],
                                            tmp_path: Path) -> None:
    result = invoke(registry, "--model", tiny_bundle.path, "--data", tmp_path / "nope.csv", *window_args,
                    "--out", tmp_path / "r")
    _one_line_error(result, "nope.csv")
