"""The promotion gate: a challenger replaces the champion only when it has earned it.

A model-risk policy in code. :func:`evaluate_promotion` approves version ``V`` when

1. ``<registry>/validation/V/report.json`` exists (``fraudlens validate`` writes it)
   and is a report of ``V``;
2. the report's calibration and stability checks passed, and its reproducibility
   check did not fail;
3. when there is a champion: both models, each with its own feature pipeline, score
   the report's out-of-time window (same file, verified by its SHA-256), and for
   each metric in :data:`GATE_METRICS` the day-bootstrap interval of
   *challenger - champion* (:func:`detection.uncertainty.paired_difference`) does not
   lie entirely below zero. "Not worse beyond the noise" is the bar, not "better":
   a retrain on fresh data that is as good as the champion may go live. With no
   champion yet, the report's checks alone decide.

Every reason, approving or not, goes into :class:`GateDecision` so that the audit
trail says why. The checks on a report and on a comparison are pure functions
(:func:`report_findings`, :func:`comparison_findings`); :func:`evaluate_promotion`
does the I/O around them and :func:`promote_if_approved` acts on the decision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detection.bundle import ModelBundle, file_sha256
from detection.registry import ModelRegistry, RegistryError
from detection.uncertainty import DEFAULT_LEVEL, DEFAULT_RESAMPLES, Interval

#: The metrics a challenger must not be worse on: what investigators feel (precision of the
#: alert queue) and the ranking quality the threshold policy is built on.
GATE_METRICS: tuple[str, ...] = ("average_precision", "card_precision_at_k")
REPORT_FORMAT = 1

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger may be promoted, every reason why (or why not), and the numbers behind it."""

    approved: bool
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"approved": self.approved, "reasons": list(self.reasons), "evidence": self.evidence}


# -- pure checks ---------------------------------------------------------------------------------------------------


def report_findings(report: Mapping[str, Any], version: str) -> tuple[bool, list[str]]:
    """Check a validation report of ``version``: (passed, reasons). No I/O."""
    reasons: list[str] = []
    ok = True
    if report.get("format") != REPORT_FORMAT:
        return False, [f"validation report format {report.get('format')!r} is not supported (expected "
                       f"{REPORT_FORMAT}); rerun fraudlens validate for {version}"]
    if report.get("model_version") != version:
        return False, [f"the validation report is for model {report.get('model_version')!r}, not {version}; "
                       f"rerun fraudlens validate for {version}"]
    checks = report.get("checks") or {}

    calibration = report.get("calibration") or {}
    passed = calibration.get("passed", checks.get("calibration"))
    if passed is True and checks.get("calibration") is not False:
        reasons.append(f"calibration passed (ECE {_num(calibration.get('ece'))} <= {_num(calibration.get('ece_limit'))})")
    else:
        ok = False
        reasons.append("calibration failed: " + (
            f"ECE {_num(calibration.get('ece'))} above the limit {_num(calibration.get('ece_limit'))}"
            if passed is not None else "the report has no calibration result"))

    stability = report.get("stability") or {}
    passed = stability.get("passed", checks.get("stability"))
    limit = stability.get("psi_limit", 0.25)
    if passed is True and checks.get("stability") is not False:
        reasons.append(f"stability passed (score and top features PSI below {_num(limit)})")
    else:
        ok = False
        reasons.append("stability failed: " + (_unstable(stability, limit) if passed is not None
                                                else "the report has no stability result"))

    reproducible = checks.get("reproducible")
    if reproducible is False:
        ok = False
        reasons.append("reproducibility failed: retraining with the manifest's data and seed did not give the "
                       "same model; find out why before promoting")
    elif reproducible is None:
        reasons.append("reproducibility was not checked by the report (checks.reproducible is null)")
    else:
        reasons.append("reproducibility passed")
    return ok, reasons


def _unstable(stability: Mapping[str, Any], limit: float) -> str:
    over = []
    score = stability.get("score") or {}
    if _over(score.get("psi"), limit):
        over.append(f"score PSI {_num(score.get('psi'))}")
    features = stability.get("features") or {}
    for name in stability.get("top_features") or list(features):
        psi = (features.get(name) or {}).get("psi")
        if _over(psi, limit):
            over.append(f"{name} PSI {_num(psi)}")
    return (", ".join(over) + f" at or above {_num(limit)}") if over else "the report says stability did not pass"


def _over(psi: Any, limit: float) -> bool:
    return isinstance(psi, (int, float)) and psi >= limit


def comparison_findings(comparison: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Judge the champion/challenger comparison evidence (see :func:`compare_models`): (passed, reasons). No I/O."""
    ok = True
    reasons = []
    champion = comparison["champion"]
    metrics = comparison["metrics"]
    for name in GATE_METRICS:
        m = metrics[name]
        diff = m["difference"]
        low, high = diff["ci_low"], diff["ci_high"]
        said = (f"{name}: challenger {_num(m['challenger'])} vs champion {champion} {_num(m['champion'])}, "
                f"difference {_signed(diff['value'])} ({_pct(diff['level'])} interval {_signed(low)} to {_signed(high)})")
        if low is None or high is None or diff["value"] is None:
            ok = False
            reasons.append(f"{said}: undefined on this window (no frauds or no labels?), so the challenger cannot be "
                           "shown to be no worse; validate on a window with labelled frauds")
        elif high < 0:
            ok = False
            reasons.append(f"{said}: the challenger is worse beyond the bootstrap interval")
        else:
            reasons.append(f"{said}: not worse beyond the bootstrap interval")
    return ok, reasons


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _signed(value: Any) -> str:
    return f"{value:+.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def _pct(level: float) -> str:
    return f"{level:.0%}"


# -- I/O around the checks ---------------------------------------------------------------------------------------


def read_report(path: Path) -> dict[str, Any] | None:
    """The validation report at ``path``, or ``None`` when there is none."""
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryError(f"validation report {path} is not valid JSON ({exc}); rerun fraudlens validate") from None
    if not isinstance(loaded, dict):
        raise RegistryError(f"validation report {path} is not a JSON object; rerun fraudlens validate")
    return loaded


def compare_models(
    champion: ModelBundle,
    challenger: ModelBundle,
    frame: pd.DataFrame,
    start: Any,
    end: Any,
    *,
    k: int = 100,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Score both bundles on the same window and bootstrap the paired difference (challenger - champion).

    Each bundle computes its features with its own pipeline (from its feature settings),
    exactly as it would in production. Returns the comparison evidence: point values of
    every interval metric for both models and the interval of their difference.
    """
    from detection.metrics import auc_roc, average_precision, card_precision_at_k, recall_at_fpr
    from detection.scoring import score_window
    from detection.uncertainty import DayBootstrap, paired_difference
    from features.pipeline import FeaturePipeline

    if "is_fraud" not in frame:
        raise ValueError("cannot compare the champion and the challenger: the data has no 'is_fraud' label column")
    scored = {}
    for role, bundle in (("champion", champion), ("challenger", challenger)):
        pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
        scored[role] = score_window(frame, bundle, pipeline, start, end, n_threads=n_threads)
    both = scored["champion"].merge(scored["challenger"][["transaction_id", "score"]], on="transaction_id",
                                    suffixes=("_champion", "_challenger"), validate="one_to_one")
    labelled = both.loc[both["is_fraud"].notna()]
    y = labelled["is_fraud"].to_numpy(dtype=np.float64)
    days = labelled["timestamp"].dt.floor("D").to_numpy()
    cards = labelled["card_id"].to_numpy()
    s_champion = labelled["score_champion"].to_numpy(dtype=np.float64)
    s_challenger = labelled["score_challenger"].to_numpy(dtype=np.float64)

    def point(s: np.ndarray) -> dict[str, float]:
        if y.size == 0:
            return dict.fromkeys(("auc_roc", "average_precision", "recall_at_1pct_fpr", "card_precision_at_k"), math.nan)
        return {"auc_roc": auc_roc(y, s), "average_precision": average_precision(y, s),
                "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01), "card_precision_at_k": card_precision_at_k(cards, days, y, s, k)}

    values = {"champion": point(s_champion), "challenger": point(s_challenger)}
    if y.size:
        boot = DayBootstrap(y, days, cards, k=k)
        diffs = paired_difference(boot, s_champion, s_challenger, n_resamples=n_resamples, level=level, seed=seed)
    else:
        nan = Interval(math.nan, math.nan, math.nan, level, n_resamples)
        diffs = dict.fromkeys(values["champion"], nan)
    return {
        "champion": champion.version,
        "challenger": challenger.version,
        "window": {"start": str(start), "end": str(end)},
        "rows": len(labelled),
        "frauds": int(y.sum()),
        "days": int(pd.Series(days).nunique()),
        "k": k,
        "metrics": {name: {"champion": _clean(values["champion"][name]), "challenger": _clean(values["challenger"][name]),
                           "difference": diffs[name].to_json()} for name in values["champion"]},
    }


def _clean(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def evaluate_promotion(
    registry: ModelRegistry,
    version: str,
    *,
    data_override: Path | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
    n_threads: int | None = None,
    progress: ProgressFn | None = None,
) -> GateDecision:
    """Run the gate for ``version`` (see the module docstring); never changes the registry.

    ``data_override`` replaces the report's ``data.path`` (the file moved); its SHA-256
    must still equal the report's. Raises :class:`RegistryError` when ``version`` is not
    registered (a typo, not a decision).
    """
    say = progress or (lambda _msg: None)
    if version not in registry.list_versions():
        raise RegistryError(f"cannot promote {version}: not in registry {registry.root}; "
                            f"registered: {', '.join(registry.list_versions()) or 'none'}")
    champion = _champion_or_none(registry)
    report_path = registry.validation_report_path(version)
    evidence: dict[str, Any] = {"version": version, "champion": champion, "report": str(report_path)}
    if champion == version:
        return GateDecision(False, [f"{version} is already the champion; nothing to promote"], evidence)

    report = read_report(report_path)
    if report is None:
        return GateDecision(False, [
            f"no validation report for {version} at {report_path}; run fraudlens validate on {version} "
            "(it copies report.json there when the model is in the registry) first"], evidence)
    evidence["report_generated_at"] = report.get("generated_at")
    evidence["checks"] = report.get("checks")
    ok, reasons = report_findings(report, version)
    if not ok:
        if champion is not None:
            reasons.append(f"the comparison with the champion {champion} was not run: the report checks failed")
        return GateDecision(False, reasons, evidence)
    if champion is None:
        reasons.append("no champion yet: approved on the validation report's checks alone "
                       "(no out-of-time comparison with a champion)")
        return GateDecision(True, reasons, evidence)

    data, problem = _verified_data(report, data_override)
    evidence["data"] = data
    if problem is not None:
        return GateDecision(False, [*reasons, problem], evidence)
    window = report.get("window") or {}
    if not window.get("start") or not window.get("end"):
        return GateDecision(False, [*reasons, "the validation report has no out-of-time window (window.start/end); "
                                              "rerun fraudlens validate"], evidence)
    frame = _read_window_data(Path(data["path"]), report["data"].get("columns"), say)
    k = int((report.get("performance") or {}).get("k", 100))
    say(f"scoring {champion} (champion) and {version} (challenger) on {window['start']}..{window['end']}")
    comparison = compare_models(registry.load(champion), registry.load(version), frame, window["start"], window["end"],
                                k=k, n_resamples=n_resamples, level=level, seed=seed, n_threads=n_threads)
    comparison["reported_challenger"] = {name: ((report.get("performance") or {}).get(name) or {}).get("value")
                                         for name in GATE_METRICS}
    evidence["comparison"] = comparison
    compared_ok, compared = comparison_findings(comparison)
    return GateDecision(compared_ok, [*reasons, *compared], evidence)


def promote_if_approved(
    registry: ModelRegistry, version: str, *, actor: str = "unknown", data_override: Path | None = None,
    **gate_options: Any,
) -> GateDecision:
    """Run the gate and, when it approves, promote ``version`` with the gate's reasons in the history."""
    decision = evaluate_promotion(registry, version, data_override=data_override, **gate_options)
    if decision.approved:
        registry.promote(version, actor=actor, reasons=decision.reasons,
                         expect_champion=decision.evidence.get("champion"))
    return decision


def _champion_or_none(registry: ModelRegistry) -> str | None:
    try:
        return registry.champion_version()
    except RegistryError:
        return None


def _verified_data(report: Mapping[str, Any], data_override: Path | None) -> tuple[dict[str, Any], str | None]:
    """The window data to score and a refusal reason when it is not the report's file."""
    described = report.get("data") or {}
    expected = described.get("sha256")
    path = Path(data_override) if data_override is not None else Path(str(described.get("path", "")))
    info: dict[str, Any] = {"path": str(path), "expected_sha256": expected, "override": data_override is not None}
    if not expected or not described.get("path"):
        return info, "the validation report does not name its data file and SHA-256; rerun fraudlens validate"
    if not path.is_file():
        return info, (f"the out-of-time data {path} does not exist; pass --data FILE with the file the report was "
                      f"computed on (sha256 {expected})")
    actual = file_sha256(path)
    info["sha256"] = actual
    if actual != expected:
        return info, (f"data sha256 mismatch: {path} has sha256 {actual} but the validation report was computed on "
                      f"{expected}; champion and challenger must be compared on the report's data")
    return info, None


def _read_window_data(path: Path, columns: Mapping[str, str] | None, say: ProgressFn) -> pd.DataFrame:
    from features.io import ColumnMapping, read_transactions

    say(f"reading {path}")
    mapping = ColumnMapping(dict(columns)) if columns else None
    return read_transactions(path, columns=mapping).frame
