"""Model-risk validation: the evidence a validator needs to sign off one model version.

One call, :func:`run_validation`, scores an out-of-time window with a bundle and
measures everything the report shows: data profile, performance with day-bootstrap
intervals, calibration, threshold trade-offs, population stability, segments,
explanations (SHAP and a narrative faithfulness audit), challengers in the same run,
a retrain-and-compare reproducibility check and a model card grounded in those
numbers. :func:`write_report` writes ``report.json`` + a self-contained
``report.html``. Each section also has its own function (used by the notebook).

>>> result = run_validation(frame, bundle, start, end, data_path=path)   # doctest: +SKIP
>>> write_report(result, Path("runs/validation"))                        # doctest: +SKIP

``explanations`` imports :mod:`explain` inside its functions: the report is the one
place in ``detection`` that needs SHAP and narratives, and importing it lazily keeps
``detection`` importable without the explain stack (the layering is api/streaming ->
explain -> detection).
"""

from __future__ import annotations

from detection.validation.calibration import (
    brier_score,
    calibration_section,
    expected_calibration_error,
    reliability,
)
from detection.validation.performance import performance_section
from detection.validation.profile import profile_section
from detection.validation.report import (
    ValidationOptions,
    ValidationResult,
    copy_to_registry,
    run_validation,
    write_report,
)
from detection.validation.reproduce import compare_bundles, reproduce, retrain_from_manifest
from detection.validation.segments import segment_section
from detection.validation.stability import stability_section
from detection.validation.thresholds import threshold_section
from detection.validation.window import EvaluatedWindow, evaluate_window

__all__ = [
    "EvaluatedWindow",
    "ValidationOptions",
    "ValidationResult",
    "brier_score",
    "calibration_section",
    "compare_bundles",
    "copy_to_registry",
    "evaluate_window",
    "expected_calibration_error",
    "performance_section",
    "profile_section",
    "reliability",
    "reproduce",
    "retrain_from_manifest",
    "run_validation",
    "segment_section",
    "stability_section",
    "threshold_section",
    "write_report",
]
