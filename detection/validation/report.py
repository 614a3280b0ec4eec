"""Assemble the validation report: run every section on one evaluated window, write JSON + HTML.

``report.json`` follows the contract the promotion gate reads (``format`` 1,
``model_version``, ``generated_at``, ``data``, ``window``, ``performance``,
``calibration``, ``stability``, ``checks``) and adds the other sections.
``report.html`` shows the same numbers with the figures embedded (no network).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detection.bundle import ModelBundle
from detection.validation import plots
from detection.validation.calibration import ECE_LIMIT, calibration_section
from detection.validation.challengers import challenger_scores, challenger_section
from detection.validation.explanations import (
    N_ALERTS,
    N_DEPENDENCE,
    SHAP_SAMPLE,
    explanation_section,
    faithfulness_audit,
    shap_sample,
)
from detection.validation.modelcard import model_card
from detection.validation.performance import day_bootstrap, performance_section
from detection.validation.profile import profile_section
from detection.validation.reproduce import reproduce
from detection.validation.segments import (
    AP_RATIO,
    MIN_FRAUDS,
    recall_by_type,
    segment_labels,
    segment_section,
)
from detection.validation.stability import stability_section
from detection.validation.thresholds import threshold_section
from detection.validation.window import EvaluatedWindow, evaluate_window

FORMAT = 1
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
VALIDATION_DIR = "validation"
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class ValidationOptions:
    """Knobs of a validation run; every value is recorded in the report."""

    k: int = 100
    n_resamples: int = 500
    seed: int = 0
    ece_limit: float = ECE_LIMIT
    min_segment_frauds: int = MIN_FRAUDS
    segment_ap_ratio: float = AP_RATIO
    shap_sample: int = SHAP_SAMPLE
    n_alerts: int = N_ALERTS
    reproduce: bool = True
    #: The data file to retrain from (default: the validated data file itself).
    train_data: Path | None = None


@dataclass
class ValidationResult:
    report: dict[str, Any]
    figures: dict[str, str] = field(default_factory=dict)
    window: EvaluatedWindow | None = None


def clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists, paths -> str (valid strict JSON)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def run_validation(
    frame: pd.DataFrame,
    bundle: ModelBundle,
    start: Any,
    end: Any,
    *,
    data_path: Path | None = None,
    data_sha256: str | None = None,
    columns: dict[str, str] | None = None,
    options: ValidationOptions | None = None,
    progress: ProgressFn | None = None,
) -> ValidationResult:
    """Every section of the report for ``bundle`` on the labelled rows of [start, end] of ``frame``."""
    opts = options or ValidationOptions()
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    say(f"computing features and scoring {start}..{end}")
    window = evaluate_window(frame, bundle, start, end)
    threshold = float(bundle.threshold.threshold)
    y, s = window.y, window.labelled_column("score").astype(float)
    lap("score")

    say(f"bootstrapping performance ({opts.n_resamples} day resamples)")
    boot = day_bootstrap(window, k=opts.k)
    performance = performance_section(window, threshold, k=opts.k, n_resamples=opts.n_resamples, seed=opts.seed,
                                      boot=boot)
    calibration = calibration_section(y, s, ece_limit=opts.ece_limit)
    thresholds = threshold_section(window, threshold)
    thresholds["bundle_row"] = next(r for r in thresholds["rows"] if r["is_bundle"])
    lap("performance")

    say("training and scoring the challengers")
    found = challenger_scores(window, bundle)
    challengers = challenger_section(window, bundle, boot, found, k=opts.k, n_resamples=opts.n_resamples,
                                     seed=opts.seed)
    lap("challengers")

    say("population stability and segments")
    stability = stability_section(bundle.reference, window.scored["score"].to_numpy(), window.X, bundle.feature_names)
    segments = segment_section(window.scored, segment_labels(window),
                               overall_ap=performance["average_precision"]["value"], threshold=threshold,
                               min_frauds=opts.min_segment_frauds, ap_ratio=opts.segment_ap_ratio)
    if "fraud_scenario" in window.scored:
        segments["fraud_types"] = recall_by_type(window.scored, "fraud_scenario", threshold)
    lap("stability_segments")

    say(f"SHAP on {min(opts.shap_sample, len(window.rows))} rows and a narrative audit of {opts.n_alerts} alerts")
    sample = shap_sample(window, bundle, n=opts.shap_sample, seed=opts.seed)
    audit = faithfulness_audit(window, bundle, n_alerts=opts.n_alerts) if opts.n_alerts > 0 else None
    explanations = explanation_section(sample, dict(bundle.families), audit, n_dependence=N_DEPENDENCE)
    lap("explanations")

    reproducibility: dict[str, Any] = {"performed": False, "passed": None,
                                       "reason": "skipped (--no-reproduce)" if not opts.reproduce else None}
    if opts.reproduce:
        source = opts.train_data or data_path
        if source is None:
            reproducibility["reason"] = "no data file to retrain from"
            reproducibility["performed"] = False
        else:
            say("retraining from the manifest to check the bundle reproduces byte for byte")
            reproducibility = reproduce(bundle, Path(source))
    lap("reproduce")

    profile = profile_section(frame, window, label_delay_days=bundle.feature_settings.label_delay_days)
    report: dict[str, Any] = {
        "format": FORMAT,
        "model_version": bundle.version,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundle": {
            "path": str(bundle.path) if bundle.path else None,
            "train_window": bundle.manifest.get("train_window"),
            "n_trees": bundle.manifest.get("n_trees"),
            "n_features": len(bundle.feature_names),
            "seed": bundle.manifest.get("seed"),
            "data_sha256": bundle.manifest.get("data", {}).get("sha256"),
            "threshold_policy": {"kind": bundle.threshold.kind, "target": bundle.threshold.target,
                                 "threshold": threshold},
            "feature_settings": bundle.feature_settings.model_dump(mode="json"),
        },
        "data": {"path": str(data_path) if data_path else None, "sha256": data_sha256, "columns": columns or None,
                 **profile},
        "window": {"start": str(window.start), "end": str(window.end)},
        "performance": performance,
        "calibration": calibration,
        "thresholds": thresholds,
        "stability": stability,
        "segments": segments,
        "explanations": explanations,
        "challengers": challengers,
        "reproducibility": reproducibility,
        "checks": {
            "calibration": bool(calibration["passed"]),
            "stability": bool(stability["passed"]),
            "reproducible": None if not reproducibility.get("performed") else bool(reproducibility["passed"]),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
    }
    report["model_card"] = model_card(report)
    say("drawing the figures")
    figures = {
        "roc_pr": plots.roc_pr(y, {"model": s, **{name: np.asarray(f["scores"])[window.labelled]
                                                  for name, f in found.items() if f["scores"] is not None}}),
        "reliability": plots.reliability(calibration["bins"], calibration["ece"]),
        "thresholds": plots.thresholds(thresholds["rows"], threshold),
        "stability": plots.psi_bars(stability),
        "segments": plots.segments(segments),
        "shap_importance": plots.shap_importance(explanations["global_importance"]),
        "dependence": plots.dependence(sample.values, sample.features, sample.feature_names,
                                       explanations["dependence_features"]),
    }
    uris = {name: plots.to_data_uri(fig) for name, fig in figures.items()}
    lap("figures")
    report["timings_s"] = timings
    return ValidationResult(report=clean_json(report), figures=uris, window=window)


def write_report(result: ValidationResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and the self-contained ``report.html`` into ``out_dir``."""
    from detection.validation.html import render_html

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / REPORT_JSON, out_dir / REPORT_HTML
    json_path.write_text(json.dumps(result.report, indent=2, allow_nan=False) + "\n")
    html_path.write_text(render_html(result.report, result.figures))
    return json_path, html_path


def copy_to_registry(out_dir: Path, registry_dir: Path, version: str) -> Path | None:
    """Copy the report to ``registry_dir/validation/<version>/`` when ``version`` is registered there."""
    from detection.registry import ModelRegistry

    if version not in ModelRegistry(Path(registry_dir)).list_versions():
        return None
    target = Path(registry_dir) / VALIDATION_DIR / version
    target.mkdir(parents=True, exist_ok=True)
    # HTML first, JSON last and each by rename: the promotion gate reads report.json and
    # must never see half a file or a JSON without its page.
    for name in (REPORT_HTML, REPORT_JSON):
        staging = target / f".{name}.tmp"
        shutil.copy2(Path(out_dir) / name, staging)
        os.replace(staging, target / name)
    return target
