"""The validation report end to end on a small simulated dataset: sections, numbers, HTML, reproducibility."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detection import ModelBundle, ModelRegistry, train
from detection.bundle import DETERMINISTIC_FILES, file_sha256
from detection.metrics import auc_roc, average_precision
from detection.scoring import score_window
from detection.validation import (
    ValidationOptions,
    ValidationResult,
    copy_to_registry,
    evaluate_window,
    reproduce,
    run_validation,
    write_report,
)
from features.io import read_transactions
from features.pipeline import FeaturePipeline
from fraudlens.settings import ModelSettings

SECTIONS = ("data", "window", "performance", "calibration", "thresholds", "stability", "segments", "explanations",
            "challengers", "reproducibility", "model_card", "checks")
FIGURES = ("roc_pr", "reliability", "thresholds", "stability", "segments", "shap_importance", "dependence")
OPTIONS = ValidationOptions(n_resamples=100, shap_sample=200, n_alerts=8, min_segment_frauds=5)


@pytest.fixture(scope="session")
def csv_frame(sim_csv: Path) -> pd.DataFrame:
    return read_transactions(sim_csv).frame


@pytest.fixture(scope="session")
def csv_bundle(tmp_path_factory: pytest.TempPathFactory, sim_csv: Path, csv_frame: pd.DataFrame,
               pipeline: FeaturePipeline, windows: Any) -> ModelBundle:
    """A bundle trained from the CSV file itself, with its real hash: what `fraudlens train` writes."""
    bundle = train(csv_frame, train_start=windows.train_start, train_end=windows.train_end, pipeline=pipeline,
                   settings=ModelSettings(seed=5, n_threads=1, max_rounds=300, early_stopping_rounds=30),
                   data_hash=file_sha256(sim_csv), source=str(sim_csv))
    bundle.save(tmp_path_factory.mktemp("validation-models"))
    return bundle


@pytest.fixture(scope="session")
def validation(csv_frame: pd.DataFrame, csv_bundle: ModelBundle, sim_csv: Path, windows: Any) -> ValidationResult:
    return run_validation(csv_frame, csv_bundle, windows.test_start, windows.test_end, data_path=sim_csv,
                          data_sha256=file_sha256(sim_csv), options=OPTIONS)


@pytest.fixture(scope="session")
def written(validation: ValidationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(validation, out)
    return out


def test_report_json_follows_the_contract_and_has_every_section(written: Path, csv_bundle: ModelBundle,
                                                                sim_csv: Path, windows: Any) -> None:
    report = json.loads((written / "report.json").read_text())
    assert report["format"] == 1 and report["model_version"] == csv_bundle.version
    assert report["generated_at"].endswith("+00:00")
    assert all(section in report for section in SECTIONS)
    assert report["window"] == {"start": str(windows.test_start), "end": str(windows.test_end)}
    data = report["data"]
    assert data["path"] == str(sim_csv) and data["sha256"] == file_sha256(sim_csv) and data["columns"] is None
    assert data["rows"] > data["window_profile"]["rows"] > 0 and data["window_profile"]["frauds"] > 0
    assert set(data["missingness"]) >= {"amount", "channel", "latitude", "is_fraud"}
    assert data["label_delay"]["configured_days"] == csv_bundle.feature_settings.label_delay_days
    assert data["label_delay"]["observed"]["n_frauds_with_label_time"] > 0
    perf = report["performance"]
    assert perf["k"] == 100
    for metric in ("auc_roc", "average_precision", "recall_at_1pct_fpr", "card_precision_at_k"):
        entry = perf[metric]
        assert set(entry) == {"value", "ci_low", "ci_high", "level", "n_resamples"}
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"] and entry["n_resamples"] == 100
    cal = report["calibration"]
    assert set(cal) >= {"brier", "ece", "ece_limit", "passed"} and cal["passed"] == (cal["ece"] <= cal["ece_limit"])
    stab = report["stability"]
    assert stab["psi_limit"] == 0.25 and stab["top_features"] == csv_bundle.reference.importance[:10]
    assert set(stab["features"]) == set(csv_bundle.feature_names)
    assert stab["passed"] == (stab["score"]["psi"] < 0.25 and all(stab["features"][n]["psi"] < 0.25
                                                                   for n in stab["top_features"]))
    assert sum(row["is_bundle"] for row in report["thresholds"]["rows"]) == 1
    assert set(report["segments"]["dimensions"]) == {"channel", "mcc_group", "amount_band", "card_tenure"}
    for dim, rows in report["segments"]["dimensions"].items():
        assert sum(r["rows"] for r in rows) == perf["n_transactions"], dim
    assert report["explanations"]["faithfulness"]["n"] == 8
    assert report["explanations"]["faithfulness"]["mean_accuracy"] == 4.0  # template narratives are grounded
    assert len(report["explanations"]["global_importance"]) == len(csv_bundle.feature_names)
    assert report["challengers"]["models"]["logistic_regression"]["available"]
    assert report["checks"] == {"calibration": cal["passed"], "stability": stab["passed"], "reproducible": True}
    assert report["model_card"]["limitations"] and report["model_card"]["known_failure_modes"]


def test_numbers_match_an_independent_computation(validation: ValidationResult, csv_frame: pd.DataFrame,
                                                  csv_bundle: ModelBundle, windows: Any) -> None:
    scored = score_window(csv_frame, csv_bundle, None, windows.test_start, windows.test_end)
    y, s = scored["is_fraud"].to_numpy(dtype=float), scored["score"].to_numpy()
    perf = validation.report["performance"]
    assert perf["average_precision"]["value"] == pytest.approx(average_precision(y, s), abs=1e-9)
    assert perf["auc_roc"]["value"] == pytest.approx(auc_roc(y, s), abs=1e-9)
    assert perf["n_frauds"] == int(y.sum())
    assert validation.report["calibration"]["brier"] == pytest.approx(float(np.mean((s - y) ** 2)), abs=1e-12)
    bundle_row = validation.report["thresholds"]["bundle_row"]
    assert bundle_row["alerts"] == int(scored["alert"].sum())


def test_window_scores_equal_score_window(csv_frame: pd.DataFrame, csv_bundle: ModelBundle, windows: Any) -> None:
    window = evaluate_window(csv_frame, csv_bundle, windows.test_start, windows.test_end)
    reference = score_window(csv_frame, csv_bundle, None, windows.test_start, windows.test_end)
    assert window.scored["transaction_id"].tolist() == reference["transaction_id"].tolist()
    np.testing.assert_array_equal(window.scored["score"].to_numpy(), reference["score"].to_numpy())


def test_html_is_self_contained_and_holds_the_plots(written: Path, validation: ValidationResult) -> None:
    html = (written / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    images = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES) and set(validation.figures) == set(FIGURES)
    assert all(len(image) > 5000 for image in images)
    for anchor in ("model-card", "data", "performance", "calibration", "thresholds", "stability", "segments",
                   "explanations", "reproducibility"):
        assert f'id="{anchor}"' in html
    assert validation.report["model_version"] in html
    assert f"{validation.report['performance']['average_precision']['value']:.3f}" in html


def test_registry_copy_only_for_registered_versions(written: Path, csv_bundle: ModelBundle, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert copy_to_registry(written, registry.root, csv_bundle.version) is None
    registry.register(csv_bundle)
    target = copy_to_registry(written, registry.root, csv_bundle.version)
    assert target == registry.root / "validation" / csv_bundle.version
    for name in ("report.json", "report.html"):
        assert (target / name).read_bytes() == (written / name).read_bytes()
    assert registry.list_versions() == [csv_bundle.version]  # the validation folder is not a version


def test_reproducibility_lists_hashes_and_versions(validation: ValidationResult, csv_bundle: ModelBundle) -> None:
    repro = validation.report["reproducibility"]
    assert repro["passed"] is True and repro["differing"] == []
    assert set(repro["files"]) == set(DETERMINISTIC_FILES)
    assert repro["files"]["model.ubj"]["original"] == file_sha256(Path(csv_bundle.path) / "model.ubj")
    assert repro["data"]["sha256"] == repro["data"]["manifest_sha256"]
    assert repro["libraries"]["current"]["xgboost"] and repro["version"]["retrained"] == csv_bundle.version


def test_reproducibility_fails_when_a_bundle_file_was_altered(tmp_path: Path, csv_bundle: ModelBundle,
                                                              sim_csv: Path) -> None:
    bundle, data = csv_bundle, sim_csv
    altered = tmp_path / bundle.version
    shutil.copytree(Path(bundle.path), altered)
    threshold = json.loads((altered / "threshold.json").read_text())
    threshold["threshold"] = threshold["threshold"] * 0.9  # a quiet edit: still a valid bundle
    (altered / "threshold.json").write_text(json.dumps(threshold, indent=2, sort_keys=True) + "\n")
    result = reproduce(ModelBundle.from_path(altered), data)
    assert result["passed"] is False and result["differing"] == ["threshold.json"]
    assert "threshold.json" in result["reason"]
    assert result["files"]["model.ubj"]["identical"] is True


def test_reproducibility_fails_on_other_data(tmp_path: Path, csv_bundle: ModelBundle, sim_csv: Path) -> None:
    bundle, data = csv_bundle, sim_csv
    other = tmp_path / "other.csv"
    other.write_bytes(data.read_bytes() + b"\n")
    result = reproduce(bundle, other)
    assert result["passed"] is False and "SHA-256" in result["reason"] and result["files"] is None
