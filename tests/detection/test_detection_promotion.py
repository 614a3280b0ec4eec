"""The promotion gate with real bundles: a worse challenger is refused, an equal one goes live.

The champion is ``tiny_bundle``; the challengers are trained here on the same simulated
data: one with a single boosting round (really worse, checked below) and one with
another seed (equal quality). Their validation reports are written by
:func:`_report`: performance comes from the real scores of each bundle on the
out-of-time window; the calibration and stability results are set directly (the
gate only reads their verdicts, and these tests need both verdicts on demand).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from detection import ModelBundle, ModelRegistry, RegistryError
from detection.bundle import file_sha256
from detection.promotion import (
    GATE_METRICS,
    comparison_findings,
    evaluate_promotion,
    promote_if_approved,
    report_findings,
)
from detection.scoring import score_window
from detection.uncertainty import DayBootstrap
from fraudlens.settings import ModelSettings

N_RESAMPLES = 200
ReportFn = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def worse_bundle(train_tiny: Any, sim_frame: pd.DataFrame, pipeline: Any, model_settings: ModelSettings) -> ModelBundle:
    """One boosting round: a model that ranks far worse than the champion."""
    settings = model_settings.model_copy(update={"max_rounds": 1, "early_stopping_rounds": 1})
    return train_tiny(sim_frame, pipeline, settings)


@pytest.fixture(scope="module")
def peer_bundle(train_tiny: Any, sim_frame: pd.DataFrame, pipeline: Any, model_settings: ModelSettings) -> ModelBundle:
    """Same data, another seed: a different model of the same quality."""
    return train_tiny(sim_frame, pipeline, model_settings.model_copy(update={"seed": model_settings.seed + 1}))


@pytest.fixture(scope="module")
def make_report(sim_frame: pd.DataFrame, sim_csv: Path, windows: Any) -> ReportFn:
    """``make_report(bundle, **overrides)``: a contract report.json payload for ``bundle`` on the test window."""
    performance: dict[str, dict[str, Any]] = {}

    def build(bundle: ModelBundle, *, calibration: bool = True, stability: bool = True,
              reproducible: bool | None = True) -> dict[str, Any]:
        if bundle.version not in performance:
            scored = score_window(sim_frame, bundle, None, windows.test_start, windows.test_end)
            boot = DayBootstrap(scored["is_fraud"], scored["timestamp"].dt.floor("D"), scored["card_id"], k=100)
            performance[bundle.version] = {"k": 100, **{name: iv.to_json() for name, iv in
                                                        boot.intervals(scored["score"], n_resamples=50).items()}}
        top = list(bundle.feature_names[:3])
        feature_psi = {name: {"psi": 0.01, "flag": "ok"} for name in top}
        if not stability:
            feature_psi[top[0]] = {"psi": 0.41, "flag": "alert"}
        return {
            "format": 1, "model_version": bundle.version, "generated_at": datetime.now(UTC).isoformat(),
            "data": {"path": str(sim_csv), "sha256": file_sha256(sim_csv), "columns": None, "rows": len(sim_frame)},
            "window": {"start": str(windows.test_start), "end": str(windows.test_end)},
            "performance": performance[bundle.version],
            "calibration": {"brier": 0.004, "ece": 0.002 if calibration else 0.09, "ece_limit": 0.02,
                            "passed": calibration},
            "stability": {"score": {"psi": 0.02, "flag": "ok"}, "features": feature_psi, "top_features": top,
                          "psi_limit": 0.25, "passed": stability},
            "checks": {"calibration": calibration, "stability": stability, "reproducible": reproducible},
        }

    return build


def _registry(tmp_path: Path, *bundles: ModelBundle, champion: ModelBundle | None = None) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models")
    for bundle in bundles:
        registry.register(bundle)
    if champion is not None:
        registry.register(champion, promote=True)
    return registry


def _put(registry: ModelRegistry, report: dict[str, Any], version: str | None = None) -> Path:
    path = registry.validation_report_path(version or report["model_version"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


def test_a_worse_challenger_is_refused_naming_the_metric(
    tmp_path: Path, tiny_bundle: ModelBundle, worse_bundle: ModelBundle, make_report: ReportFn,
) -> None:
    registry = _registry(tmp_path, worse_bundle, champion=tiny_bundle)
    _put(registry, make_report(worse_bundle))
    decision = promote_if_approved(registry, worse_bundle.version, actor="alice", n_resamples=N_RESAMPLES)
    assert not decision.approved
    refusals = [r for r in decision.reasons if "worse beyond" in r]
    assert refusals and all(any(r.startswith(m) for m in GATE_METRICS) for r in refusals)
    assert any(r.startswith("average_precision") for r in refusals)
    ap = decision.evidence["comparison"]["metrics"]["average_precision"]
    # Really worse: both point values are recorded, and the whole interval of the difference is below 0.
    assert ap["challenger"] < ap["champion"] - 0.1
    assert ap["difference"]["ci_high"] < 0 and ap["difference"]["ci_low"] <= ap["difference"]["value"]
    assert ap["difference"]["value"] == pytest.approx(ap["challenger"] - ap["champion"])
    assert registry.champion_version() == tiny_bundle.version
    assert [e.version for e in registry.history()] == [tiny_bundle.version]


def test_an_equal_quality_challenger_is_promoted_with_its_reasons_in_the_history(
    tmp_path: Path, tiny_bundle: ModelBundle, peer_bundle: ModelBundle, make_report: ReportFn,
) -> None:
    assert peer_bundle.version != tiny_bundle.version
    registry = _registry(tmp_path, peer_bundle, champion=tiny_bundle)
    _put(registry, make_report(peer_bundle))
    decision = promote_if_approved(registry, peer_bundle.version, actor="alice", n_resamples=N_RESAMPLES)
    assert decision.approved, decision.reasons
    comparison = decision.evidence["comparison"]
    assert comparison["champion"] == tiny_bundle.version and comparison["frauds"] > 10
    for name in GATE_METRICS:
        assert comparison["metrics"][name]["difference"]["ci_high"] >= 0
        assert any(r.startswith(name) and "not worse" in r for r in decision.reasons)
    # The gate re-scored the challenger on the report's window: it finds the report's own number.
    assert comparison["metrics"]["average_precision"]["challenger"] == pytest.approx(
        comparison["reported_challenger"]["average_precision"])
    assert registry.champion_version() == peer_bundle.version
    last = registry.history()[-1]
    assert (last.action, last.version, last.previous, last.actor) == ("promote", peer_bundle.version,
                                                                      tiny_bundle.version, "alice")
    assert last.reasons == decision.reasons


def test_the_first_champion_is_approved_on_the_report_checks_alone(
    tmp_path: Path, tiny_bundle: ModelBundle, make_report: ReportFn,
) -> None:
    registry = _registry(tmp_path, tiny_bundle)
    _put(registry, make_report(tiny_bundle, reproducible=None))
    decision = promote_if_approved(registry, tiny_bundle.version)
    assert decision.approved and "comparison" not in decision.evidence
    assert any("no champion yet" in r for r in decision.reasons)
    assert any("reproducibility was not checked" in r for r in decision.reasons)
    assert registry.champion_version() == tiny_bundle.version
    again = evaluate_promotion(registry, tiny_bundle.version)
    assert not again.approved and again.reasons == [f"{tiny_bundle.version} is already the champion; nothing to promote"]


def test_a_missing_or_foreign_report_is_refused(
    tmp_path: Path, tiny_bundle: ModelBundle, peer_bundle: ModelBundle, make_report: ReportFn,
) -> None:
    registry = _registry(tmp_path, peer_bundle, champion=tiny_bundle)
    decision = evaluate_promotion(registry, peer_bundle.version)
    assert not decision.approved
    assert "no validation report" in decision.reasons[0] and "fraudlens validate" in decision.reasons[0]
    _put(registry, make_report(tiny_bundle), version=peer_bundle.version)  # the champion's report, misfiled
    decision = evaluate_promotion(registry, peer_bundle.version)
    assert not decision.approved and f"is for model '{tiny_bundle.version}'" in decision.reasons[0]
    with pytest.raises(RegistryError, match="not in registry"):
        evaluate_promotion(registry, "fl-000000000000")


@pytest.mark.parametrize(("failing", "expected"), [
    ({"calibration": False}, "calibration failed: ECE 0.0900 above the limit 0.0200"),
    ({"stability": False}, "PSI 0.4100 at or above 0.2500"),
    ({"reproducible": False}, "reproducibility failed"),
])
def test_failed_report_checks_are_refused(
    tmp_path: Path, tiny_bundle: ModelBundle, peer_bundle: ModelBundle, make_report: ReportFn,
    failing: dict[str, bool], expected: str,
) -> None:
    registry = _registry(tmp_path, peer_bundle, champion=tiny_bundle)
    _put(registry, make_report(peer_bundle, **failing))
    decision = promote_if_approved(registry, peer_bundle.version)
    assert not decision.approved
    assert any(expected in r for r in decision.reasons), decision.reasons
    assert registry.champion_version() == tiny_bundle.version


def test_the_comparison_data_must_be_the_reports_file(
    tmp_path: Path, tiny_bundle: ModelBundle, peer_bundle: ModelBundle, make_report: ReportFn, sim_csv: Path,
) -> None:
    registry = _registry(tmp_path, peer_bundle, champion=tiny_bundle)
    report = make_report(peer_bundle)
    _put(registry, {**report, "data": {**report["data"], "sha256": "0" * 64}})
    decision = evaluate_promotion(registry, peer_bundle.version)
    assert not decision.approved
    assert any(r.startswith(f"data sha256 mismatch: {sim_csv} has sha256 {file_sha256(sim_csv)}") for r in decision.reasons)

    _put(registry, {**report, "data": {**report["data"], "path": str(tmp_path / "moved.csv")}})
    decision = evaluate_promotion(registry, peer_bundle.version)
    assert not decision.approved and any("does not exist; pass --data FILE" in r for r in decision.reasons)
    # --data: the same bytes at another path are accepted; other bytes are not.
    moved = shutil.copy(sim_csv, tmp_path / "moved-elsewhere.csv")
    decision = evaluate_promotion(registry, peer_bundle.version, data_override=Path(moved), n_resamples=N_RESAMPLES)
    assert decision.approved and decision.evidence["data"]["override"], decision.reasons
    edited = tmp_path / "edited.csv"
    edited.write_text(sim_csv.read_text() + "\n")
    decision = evaluate_promotion(registry, peer_bundle.version, data_override=edited)
    assert not decision.approved and any("data sha256 mismatch" in r for r in decision.reasons)


def test_report_findings_need_every_verdict() -> None:
    ok, reasons = report_findings({"format": 1, "model_version": "fl-x", "checks": {}}, "fl-x")
    assert not ok and "calibration failed: the report has no calibration result" in reasons
    assert "stability failed: the report has no stability result" in reasons
    ok, reasons = report_findings({"format": 2, "model_version": "fl-x"}, "fl-x")
    assert not ok and "format 2 is not supported" in reasons[0]
    # A verdict in the sections but a failed one in `checks` still refuses.
    report = {"format": 1, "model_version": "fl-x", "calibration": {"passed": True}, "stability": {"passed": True},
              "checks": {"calibration": True, "stability": False, "reproducible": True}}
    ok, reasons = report_findings(report, "fl-x")
    assert not ok and any(r.startswith("stability failed") for r in reasons)


def test_an_undefined_metric_refuses_rather_than_approves() -> None:
    nan_diff = {"value": None, "ci_low": None, "ci_high": None, "level": 0.95, "n_resamples": 10}
    fine = {"value": 0.01, "ci_low": -0.02, "ci_high": 0.03, "level": 0.95, "n_resamples": 10}
    comparison = {"champion": "fl-a", "metrics": {
        "average_precision": {"champion": 0.5, "challenger": 0.51, "difference": fine},
        "card_precision_at_k": {"champion": None, "challenger": None, "difference": nan_diff}}}
    ok, reasons = comparison_findings(comparison)
    assert not ok and "undefined on this window" in reasons[1] and "not worse" in reasons[0]
