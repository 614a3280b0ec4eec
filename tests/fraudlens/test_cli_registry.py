"""``fraudlens promote | rollback | models`` as a person runs them: exit codes, history, audit rows.

Three real bundles are trained on one simulated world: a first champion, a
challenger of the same quality (another seed) and a worse one (one boosting round).
The good challenger's report is a real ``detection.validation`` run, written to the
registry the way ``fraudlens validate`` does; the other two reports carry real
out-of-time performance with calibration/stability verdicts set directly (a full
validation costs ~15 s each, and on this small world the first model's real report
flags 30-day-window features whose windows are still filling in training).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from api.db import audit_table
from detection import ModelBundle, ModelRegistry, train
from detection.bundle import file_sha256
from detection.registry import HISTORY_FILE
from detection.scoring import score_window
from detection.uncertainty import DayBootstrap
from features.io import write_transactions
from features.pipeline import FeaturePipeline
from features.simulator import simulate
from fraudlens.cli import app
from fraudlens.settings import FeatureSettings, ModelSettings

TRAIN = (date(2026, 1, 1), date(2026, 1, 28))
TEST = (date(2026, 1, 29), date(2026, 2, 9))


@dataclass(frozen=True)
class World:
    data: Path
    first: ModelBundle
    good: ModelBundle
    worse: ModelBundle
    reports: dict[str, dict[str, Any]]


def _report(bundle: ModelBundle, frame: Any, data: Path) -> dict[str, Any]:
    """A contract report: real performance on the test window; calibration/stability verdicts set to 'passed'."""
    scored = score_window(frame, bundle, None, *TEST)
    boot = DayBootstrap(scored["is_fraud"], scored["timestamp"].dt.floor("D"), scored["card_id"], k=100)
    performance = {name: iv.to_json() for name, iv in boot.intervals(scored["score"], n_resamples=50).items()}
    return {
        "format": 1, "model_version": bundle.version, "generated_at": datetime.now(UTC).isoformat(),
        "data": {"path": str(data), "sha256": file_sha256(data), "columns": None, "rows": len(frame)},
        "window": {"start": str(TEST[0]), "end": str(TEST[1])},
        "performance": {"k": 100, **performance},
        "calibration": {"brier": 0.004, "ece": 0.002, "ece_limit": 0.02, "passed": True},
        "stability": {"score": {"psi": 0.02, "flag": "stable"}, "features": {}, "top_features": [], "psi_limit": 0.25,
                      "passed": True},
        "checks": {"calibration": True, "stability": True, "reproducible": None},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from detection.validation import ValidationOptions, run_validation, write_report

    root = tmp_path_factory.mktemp("registry-world")
    frame = simulate(n_cards=400, days=40, seed=11, start="2026-01-01")
    data = root / "transactions.csv"
    write_transactions(frame, data)
    pipeline = FeaturePipeline.from_settings(FeatureSettings())
    base = ModelSettings(seed=5, n_threads=1, max_rounds=300, early_stopping_rounds=30)

    def fit(settings: ModelSettings) -> ModelBundle:
        return train(frame, train_start=TRAIN[0], train_end=TRAIN[1], pipeline=pipeline, settings=settings,
                     data_hash=file_sha256(data), source=str(data))

    first, good = fit(base.model_copy(update={"seed": 6})), fit(base)
    worse = fit(base.model_copy(update={"max_rounds": 1, "early_stopping_rounds": 1}))
    validated = run_validation(frame, good, *TEST, data_path=data, data_sha256=file_sha256(data),
                               options=ValidationOptions(n_resamples=50, shap_sample=50, n_alerts=0, reproduce=False))
    out = root / "validation-good"
    write_report(validated, out)
    reports = {b.version: _report(b, frame, data) for b in (first, worse)}
    reports[good.version] = json.loads((out / "report.json").read_text())
    return World(data, first, good, worse, reports)


@pytest.fixture
def registry(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """A registry with the three bundles and their reports; the CLI reads it and a SQLite store from the env."""
    registry = ModelRegistry(tmp_path / "models")
    for bundle in (world.first, world.good, world.worse):
        registry.register(bundle)
        target = registry.validation_report_path(bundle.version)
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(world.reports[bundle.version]))
    for name, value in {"FRAUDLENS_CONFIG": "", "FRAUDLENS_MODEL__N_THREADS": "1", "USER": "ops-oncall",
                        "FRAUDLENS_MODEL__REGISTRY_DIR": str(registry.root),
                        "FRAUDLENS_STORE__URL": f"sqlite:///{tmp_path / 'store.db'}"}.items():
        monkeypatch.setenv(name, value)
    return registry


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _audit(url: str, key_id: str) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit_table.c.action, audit_table.c.target, audit_table.c.role,
                                          audit_table.c.detail)
                                .where(audit_table.c.key_id == key_id).order_by(audit_table.c.id)).all()
    finally:
        engine.dispose()
    return [(r.action, r.target, r.role, r.detail) for r in rows]


def test_promote_refuse_promote_and_roll_back_through_the_cli(registry: ModelRegistry, world: World,
                                                              tmp_path: Path) -> None:
    first, good, worse = world.first.version, world.good.version, world.worse.version
    listed = invoke("models")
    assert listed.exit_code == 0 and "*" not in listed.output
    assert listed.output.count("report: yes (calibration passed, stability passed") == 3

    opened = invoke("promote", first, "--actor", "alice")
    assert opened.exit_code == 0, opened.output
    assert f"APPROVED: {first} is now the champion (was none)" in opened.output and "no champion yet" in opened.output

    refused = invoke("promote", worse, "--actor", "alice")
    assert refused.exit_code == 1, refused.output
    assert f"REFUSED: {worse} was not promoted (champion stays {first})" in refused.output
    assert "average_precision: challenger" in refused.output and "worse beyond the bootstrap interval" in refused.output

    approved = invoke("promote", good, "--actor", "alice")  # its report is a real validation run
    assert approved.exit_code == 0, approved.output
    assert f"APPROVED: {good} is now the champion (was {first})" in approved.output
    assert "card_precision_at_k: challenger" in approved.output and "not worse beyond" in approved.output
    assert invoke("promote", good, "--actor", "alice").exit_code == 1  # already the champion
    listed = invoke("models")
    assert f"* {good}" in listed.output and f"  {first}" in listed.output

    back = invoke("rollback", "--actor", "bob")
    assert back.exit_code == 0 and f"ROLLED BACK: {first} is the champion again (was {good})" in back.output
    nothing = invoke("rollback")
    assert nothing.exit_code == 2 and nothing.output.startswith("error: cannot roll back") and "Traceback" not in nothing.output
    assert registry.champion_version() == first

    history = [json.loads(line) for line in (registry.root / HISTORY_FILE).read_text().splitlines()]
    assert [(h["action"], h["version"], h["actor"]) for h in history] == [
        ("promote", first, "alice"), ("promote", good, "alice"), ("rollback", first, "bob")]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    rows = _audit(url, "cli:alice")
    assert [(a, t, role) for a, t, role, _ in rows] == [
        ("promote", first, "admin"), ("promote_refused", worse, "admin"), ("promote", good, "admin"),
        ("promote_refused", good, "admin")]
    refusal = rows[1][3]
    assert refusal["approved"] is False and refusal["champion_before"] == first
    assert any("average_precision" in r for r in refusal["reasons"])
    assert refusal["evidence"]["comparison"]["metrics"]["average_precision"]["difference"]["ci_high"] < 0
    assert rows[2][3]["reasons"] == history[1]["reasons"]
    assert [(a, t) for a, t, _, _ in _audit(url, "cli:bob")] == [("rollback", first)]


def test_a_missing_report_exits_1_and_usage_errors_exit_2(registry: ModelRegistry, world: World, tmp_path: Path) -> None:
    registry.validation_report_path(world.good.version).unlink()
    missing = invoke("promote", world.good.version)
    assert missing.exit_code == 1 and "no validation report" in missing.output
    unknown = invoke("promote", "fl-000000000000")
    assert unknown.exit_code == 2 and unknown.output.startswith("error: cannot promote fl-000000000000: not in registry")
    # The actor defaults to $USER.
    rows = _audit(f"sqlite:///{tmp_path / 'store.db'}", "cli:ops-oncall")
    assert [(a, t) for a, t, _, _ in rows] == [("promote_refused", world.good.version)]


@pytest.mark.integration
def test_decisions_are_audited_in_postgresql(registry: ModelRegistry, world: World, pg_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_STORE__URL", pg_url)
    assert invoke("promote", world.first.version).exit_code == 0
    assert invoke("promote", world.worse.version).exit_code == 1
    rows = _audit(pg_url, "cli:ops-oncall")
    assert [(a, t, role) for a, t, role, _ in rows] == [("promote", world.first.version, "admin"),
                                                        ("promote_refused", world.worse.version, "admin")]
    assert rows[1][3]["actor"] == "ops-oncall" and rows[1][3]["reasons"]
