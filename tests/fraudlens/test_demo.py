"""The README's main command, end to end on small data: the real broker, consumer, store and cards."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from process_guard import run_process
from sqlalchemy import create_engine, text


@pytest.mark.slow
@pytest.mark.integration
def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FRAUDLENS_WORK_DIR": str(tmp_path),
        "FRAUDLENS_MODEL__REGISTRY_DIR": str(tmp_path / "models"),
        # The model-backed narrative is covered by tests/explain with the real weights; here the
        # template keeps this end-to-end test about the pipeline.
        "FRAUDLENS_NARRATIVE__BACKEND": "template",
        "FRAUDLENS_NARRATIVE__AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    command = [sys.executable, "-m", "fraudlens", "demo", "--cards", "200", "--days", "45", "--test-days", "7",
               "--narratives", "2", "--no-serve"]
    # run_process, not subprocess.run: on a timeout it also stops the broker the demo started.
    done = run_process(command, env=env, timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]

    card = json.loads(done.stdout)
    assert card["decision"] == "alert" and card["score"] >= card["threshold"]
    assert card["transaction"]["card"].startswith("****")
    # The narrative worker step ran on it (the highest-scoring alert is narrated first).
    assert card["narrative"]["provenance"]["backend"] == "template"
    assert card["narrative"]["provenance"]["attempts"] == 1

    champion = (tmp_path / "models" / "CHAMPION").read_text().strip()
    assert (tmp_path / "models" / champion / "manifest.json").exists()
    report = json.loads((tmp_path / "demo" / "baselines.json").read_text())
    assert set(report["models"]) == {"engineered_xgboost", "logistic_regression", "raw_xgboost"}

    engine = create_engine(f"sqlite:///{tmp_path / 'demo' / 'fraudlens.db'}")
    with engine.connect() as conn:
        n_scores = conn.execute(text("SELECT count(*) FROM scores")).scalar_one()
        n_distinct = conn.execute(text("SELECT count(DISTINCT transaction_id) FROM scores")).scalar_one()
        n_alerts = conn.execute(text("SELECT count(*) FROM alerts")).scalar_one()
    engine.dispose()
    assert n_scores == n_distinct == report["n_test_transactions"]
    assert 0 < n_alerts < n_scores
    assert f"scored {n_scores:,}" in done.stderr

    # The narrative worker on the same store: the demo narrated the top 2, one pass takes the rest,
    # and a second pass finds nothing left (no alert is narrated twice).
    worker_env = {**env, "FRAUDLENS_STORE__URL": f"sqlite:///{tmp_path / 'demo' / 'fraudlens.db'}"}
    narrate = [sys.executable, "-m", "fraudlens", "narrate", "--once", "--limit", "10000"]
    first = run_process(narrate, env=worker_env, timeout_s=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"{max(n_alerts - 2, 0)} narrated (template)" in first.stderr
    second = run_process(narrate, env=worker_env, timeout_s=300)
    assert second.returncode == 0 and "0 narrated (template)" in second.stderr
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert sorted(entry["transaction_id"] for entry in audit) == sorted(
        {entry["transaction_id"] for entry in audit})  # one generation per alert
    assert len(audit) == n_alerts


def test_demo_refuses_a_window_with_no_room_to_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from fraudlens import cli

    monkeypatch.setenv("FRAUDLENS_WORK_DIR", str(tmp_path))
    result = CliRunner().invoke(cli.app, ["demo", "--days", "40", "--test-days", "7", "--no-stream"])
    assert result.exit_code == 2
    assert "3 training days" in result.output and "--days" in result.output
    assert not (tmp_path / "demo" / "transactions.parquet").exists()  # refused before simulating anything
