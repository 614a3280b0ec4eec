"""Reproducibility: retrain a bundle from its manifest and compare every deterministic file byte for byte.

The manifest records the data hash, column mapping, training window, booster
parameters (threads included), rounds, calibration, imbalance rule and seed; the
feature spec records the feature settings and the threshold file the alert policy.
That is everything :func:`detection.training.train_on_features` needs, so the same data
file must give the same bytes for every file in
:data:`detection.bundle.DETERMINISTIC_FILES` (``manifest.json`` differs by its clock
and code revision only). A data file whose SHA-256 differs from the manifest's cannot
reproduce the model: the check fails and says so.

One retraining costs about as much as the original training.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from detection.bundle import DETERMINISTIC_FILES, ModelBundle, file_sha256
from detection.frames import compute_features
from detection.training import library_versions, train_on_features
from detection.validation.window import ValidationError
from fraudlens.settings import ModelSettings


def model_settings_from(bundle: ModelBundle) -> ModelSettings:
    """The training settings recorded in the bundle (manifest + threshold policy)."""
    manifest = bundle.manifest
    params = manifest["params"]
    policy = bundle.threshold
    defaults = ModelSettings()
    return ModelSettings(
        seed=int(manifest["seed"]), n_threads=int(params["nthread"]), max_rounds=int(manifest["max_rounds"]),
        early_stopping_rounds=int(manifest["early_stopping_rounds"]),
        # The manifest keeps the policy that was used; with a precision target the alert-rate
        # setting was unused (it only enters the version id), so the default is assumed.
        target_alert_rate=policy.target if policy.kind == "alert_rate" else defaults.target_alert_rate,
        target_precision=policy.target if policy.kind == "precision" else None,
    )


def retrain_from_manifest(bundle: ModelBundle, data_path: Path, out_dir: Path) -> ModelBundle:
    """Retrain ``bundle`` from ``data_path`` as its manifest says and save it under ``out_dir``.

    Raises :class:`ValidationError` when the data file is not the one the manifest names.
    """
    from features.io import ColumnMapping, read_transactions
    from features.pipeline import FeaturePipeline

    manifest = bundle.manifest
    expected = manifest.get("data", {}).get("sha256")
    actual = file_sha256(data_path)
    if actual != expected:
        raise ValidationError(f"data file {data_path} has SHA-256 {actual[:12]}..., the manifest of {bundle.version} "
                              f"records {str(expected)[:12]}...; reproduce with the training data file")
    columns = dict(manifest["data"].get("columns") or {})
    frame = read_transactions(data_path, columns=ColumnMapping(columns) if columns else None).frame
    pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    retrained = train_on_features(
        compute_features(frame, pipeline), train_start=manifest["train_window"]["start"],
        train_end=manifest["train_window"]["end"], families=dict(pipeline.family_of),
        feature_settings=bundle.feature_settings, settings=model_settings_from(bundle), data_hash=actual,
        source=str(manifest["data"].get("source", data_path)), columns=columns or None,
        calibration=manifest.get("calibration", "platt"), imbalance=manifest.get("imbalance", {}).get("rule", "none"),
    )
    retrained.save(out_dir)
    return retrained


def compare_bundles(original: Path, retrained: Path) -> dict[str, Any]:
    """SHA-256 of each deterministic file in both directories and whether they are identical."""
    files = {}
    for name in DETERMINISTIC_FILES:
        a = file_sha256(original / name) if (original / name).is_file() else None
        b = file_sha256(retrained / name) if (retrained / name).is_file() else None
        files[name] = {"original": a, "retrained": b, "identical": a is not None and a == b}
    return {"files": files, "identical": all(f["identical"] for f in files.values()),
            "differing": [name for name, f in files.items() if not f["identical"]]}


def reproduce(bundle: ModelBundle, data_path: Path, *, work_dir: Path | None = None) -> dict[str, Any]:
    """The report's ``reproducibility`` block; ``passed`` is True only for byte-identical files."""
    if bundle.path is None:
        raise ValidationError(f"bundle {bundle.version} has no directory; save it before checking reproducibility")
    started = time.perf_counter()
    manifest = bundle.manifest
    out: dict[str, Any] = {
        "performed": True,
        "data": {"path": str(data_path), "sha256": None, "manifest_sha256": manifest.get("data", {}).get("sha256")},
        "train_window": manifest.get("train_window"),
        "seed": manifest.get("seed"),
        "libraries": {"manifest": manifest.get("libraries", {}), "current": library_versions()},
        "code_revision": manifest.get("code_revision"),
    }
    out["libraries"]["match"] = out["libraries"]["manifest"] == out["libraries"]["current"]
    with tempfile.TemporaryDirectory(prefix="fraudlens-reproduce-", dir=work_dir) as tmp:
        try:
            out["data"]["sha256"] = file_sha256(data_path)
            retrained = retrain_from_manifest(bundle, Path(data_path), Path(tmp))
        except (ValueError, OSError) as exc:
            out.update(passed=False, reason=" ".join(str(exc).split()), files=None)
            out["seconds"] = round(time.perf_counter() - started, 2)
            return out
        comparison = compare_bundles(Path(bundle.path), Path(tmp) / retrained.version)
    out["data"]["matches"] = out["data"]["sha256"] == out["data"]["manifest_sha256"]
    out["version"] = {"original": bundle.version, "retrained": retrained.version}
    out.update(comparison)
    out["passed"] = bool(comparison["identical"])
    out["reason"] = None if out["passed"] else f"files differ after retraining: {', '.join(comparison['differing'])}"
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
