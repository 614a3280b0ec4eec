"""Investigator decisions, exported as labels, reach training: `fraudlens train --labels`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from features.io import write_transactions
from features.simulator import simulate
from fraudlens.cli import app

runner = CliRunner()


def _train(data: Path, out: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["train", "--data", str(data), "--train-start", "2026-01-01", "--train-end",
                                 "2026-02-20", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    bundle = Path(result.output.strip().splitlines()[-1])
    return json.loads((bundle / "manifest.json").read_text())


def test_exported_decisions_change_the_training_labels(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FRAUDLENS_MODEL__N_THREADS", "1")
    data = tmp_path / "tx.parquet"
    frame = simulate(250, 60, 11)
    write_transactions(frame, data)
    # The format `fraudlens labels export` writes: an investigator confirmed 40 transactions as fraud.
    confirmed = frame[(frame["is_fraud"] == 0) & (frame["timestamp"] < pd.Timestamp("2026-02-01", tz="UTC"))].head(40)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"transaction_id": confirmed["transaction_id"], "is_fraud": 1,
                  "label_timestamp": "2026-02-02T09:00:00+00:00"}).to_csv(labels, index=False)

    plain = _train(data, tmp_path / "plain")
    relabelled = _train(data, tmp_path / "relabelled", "--labels", str(labels))

    assert relabelled["data"]["n_train_frauds"] == plain["data"]["n_train_frauds"] + 40
    assert relabelled["data"]["sha256"] != plain["data"]["sha256"]  # a different data set, a different version
    assert "labels" in relabelled["data"]["source"]


def test_labels_for_unknown_transactions_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "tx.parquet"
    write_transactions(simulate(30, 10, 2), data)
    labels = tmp_path / "labels.csv"
    labels.write_text("transaction_id,is_fraud\nnot-a-tx,1\n")
    result = runner.invoke(app, ["train", "--data", str(data), "--train-start", "2026-01-01", "--train-end",
                                 "2026-01-08", "--out", str(tmp_path / "m"), "--labels", str(labels)])
    assert result.exit_code == 2 and "not in the data" in result.output
