"""The model bundle: one directory per model version, everything needed to score and audit it.

::

    DIR/fl-3f9a0c1d2e4b/
        model.ubj            XGBoost booster (best iteration only), UBJSON
        calibrator.json      margin -> probability (Platt or isotonic knots)
        anomaly.json         isolation-forest metadata, imputation medians, score quantiles
        anomaly_trees.npy    isolation-forest node table (plain float64 array, no pickle)
        feature_spec.json    feature names in model order, their families, feature settings
        threshold.json       alert policy and what it achieved on the calibration slice
        metrics.json         fit / early-stopping / calibration slice metrics
        reference.json       training-window distributions of the score and every feature
                             (decile bins, for PSI drift checks; see detection.drift)
        manifest.json        data hash, source, windows, splits, params, library versions, seed,
                             code revision, created_at

Every file except ``manifest.json`` is a deterministic function of the data, the
parameters and the seed: retraining gives the same bytes. ``manifest.json`` also
records when and from which code revision it was built, which naturally differs.
The version id is derived from the same inputs (see :func:`version_id`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detection.anomaly import AnomalyDetector
from detection.calibration import Calibrator, ThresholdPolicy
from detection.drift import REFERENCE_FILE, BinnedReference
from fraudlens.settings import FeatureSettings

if TYPE_CHECKING:
    import xgboost as xgb

    from detection.trees import CompiledTrees

FORMAT = 1
MODEL_FILE = "model.ubj"
CALIBRATOR_FILE = "calibrator.json"
FEATURE_SPEC_FILE = "feature_spec.json"
THRESHOLD_FILE = "threshold.json"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
REQUIRED_FILES: tuple[str, ...] = (
    MODEL_FILE,
    CALIBRATOR_FILE,
    AnomalyDetector.META_FILE,
    AnomalyDetector.TREES_FILE,
    FEATURE_SPEC_FILE,
    THRESHOLD_FILE,
    METRICS_FILE,
    REFERENCE_FILE,
    MANIFEST_FILE,
)
#: Batches of up to this many rows x trees are scored by the compiled trees, larger ones by
#: XGBoost, which is faster per row once its fixed per-call cost (about 0.25 ms) is spread.
#: Both per-row costs grow with the trees, so the crossover in rows falls as trees rise: 64
#: rows for the 373-tree demo model (bench/bench_detection.py), about 200 for the streaming
#: benchmark's 120 trees (128 rows: 4.3 against 5.8 us/row; 512 rows: 4.2 against 3.3).
#: The stream's batches at a steady 2,000 tx/s hold a few dozen rows: inside the limit.
SMALL_BATCH_TREE_ROWS = 24_000
#: Never more rows than this on the compiled path (XGBoost's threads pay off on big batches).
SMALL_BATCH_MAX_ROWS = 1024
#: Files that must be byte-identical when the same data is retrained with the same seed.
DETERMINISTIC_FILES: tuple[str, ...] = tuple(name for name in REQUIRED_FILES if name != MANIFEST_FILE)


class BundleError(ValueError):
    """A model bundle is missing, malformed, or does not fit the current feature pipeline."""


def dumps(data: Any) -> str:
    """The one JSON encoding used for bundle files: sorted keys, stable float repr, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def version_id(identity: dict[str, Any]) -> str:
    """``fl-`` + the first 12 hex digits of the SHA-256 of the canonical JSON of ``identity``.

    ``identity`` holds what determines the model (data hash, window, params, seed,
    feature spec) and nothing incidental (paths, clock, host).

    >>> version_id({"data": "abc", "seed": 1})
    'fl-ca25ea62ae51'
    """
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"fl-{digest[:12]}"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (the data hash recorded in the manifest)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ModelBundle:
    """A trained model version: booster + calibrator + threshold + anomaly detector + provenance.

    Build one with :func:`detection.train` or load one with :meth:`from_path`.
    ``X`` arguments are float arrays with columns in ``feature_names`` order; NaN
    means missing. ``score`` is the calibrated fraud probability that the
    threshold policy and every consumer use; ``margin`` is the raw log-odds that
    SHAP attributions add up to.
    """

    def __init__(
        self,
        *,
        version: str,
        feature_names: list[str],
        families: dict[str, str],
        feature_settings: FeatureSettings,
        booster: xgb.Booster,
        calibrator: Calibrator,
        threshold: ThresholdPolicy,
        anomaly: AnomalyDetector,
        manifest: dict[str, Any],
        metrics: dict[str, Any],
        reference: BinnedReference,
        path: Path | None = None,
    ) -> None:
        self.version = version
        self.feature_names = list(feature_names)
        self.families = dict(families)
        self.feature_settings = feature_settings
        self.booster = booster
        self.calibrator = calibrator
        self.threshold = threshold
        self.anomaly = anomaly
        self.manifest = manifest
        self.metrics = metrics
        #: The training population, binned: what drift (PSI) is measured against.
        self.reference = reference
        self.path = path
        self._n_features = len(self.feature_names)
        self._compiled: CompiledTrees | None = None
        self._compile_tried = False
        #: Largest batch the compiled trees score (see SMALL_BATCH_TREE_ROWS).
        self.small_batch = min(SMALL_BATCH_MAX_ROWS, max(1, SMALL_BATCH_TREE_ROWS // max(1, booster.num_boosted_rounds())))

    def __repr__(self) -> str:
        return f"ModelBundle(version={self.version!r}, n_features={self._n_features}, path={self.path})"

    # -- scoring (hot path: numpy only) ------------------------------------------------
    def _matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.shape[1] != self._n_features:
            raise ValueError(f"model {self.version} expects {self._n_features} features, got {X.shape[1]}")
        return X

    def compile(self) -> None:
        """Prepare the compiled trees for small batches (done by :meth:`from_path`; else on first use)."""
        if not self._compile_tried:
            from detection.trees import CompiledTrees

            self._compiled = CompiledTrees.from_booster(self.booster)
            self._compile_tried = True

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Raw log-odds (booster margin) per row, bit-identical to ``inplace_predict(..., "margin")``."""
        X = self._matrix(X)
        if X.shape[0] <= self.small_batch:
            # inplace_predict has a fixed cost of a few hundred microseconds per call;
            # the compiled trees answer one row in a few.
            self.compile()
            if self._compiled is not None:
                return self._compiled.margin(X)
        return np.asarray(self.booster.inplace_predict(X, predict_type="margin"), dtype=np.float64)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated fraud probability per row."""
        return self.calibrator.apply(self.margin(X))

    def decide(self, X: np.ndarray) -> np.ndarray:
        """Alert decision per row under the bundle's threshold policy."""
        return self.threshold.decide(self.score(X))

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """Unsupervised anomaly score in [0, 1], higher = more anomalous."""
        return self.anomaly.score(self._matrix(X))

    def set_threads(self, n_threads: int) -> None:
        """Threads the booster uses to predict (1 after loading: best for single rows and micro-batches)."""
        self.booster.set_param({"nthread": int(n_threads)})

    # -- compatibility -----------------------------------------------------------------
    def check_features(self, feature_names: list[str], *, what: str = "the current feature pipeline") -> None:
        """Raise :class:`BundleError` unless ``feature_names`` equal the model's, in order."""
        current = list(feature_names)
        if current == self.feature_names:
            return
        where = f" ({self.path})" if self.path else ""
        missing = [n for n in self.feature_names if n not in current]
        extra = [n for n in current if n not in self.feature_names]
        detail = []
        if missing:
            detail.append(f"the model needs {missing[:5]}{'...' if len(missing) > 5 else ''} which it does not produce")
        if extra:
            detail.append(f"it produces {extra[:5]}{'...' if len(extra) > 5 else ''} which the model never saw")
        if not detail:
            detail.append("the same features come in a different order")
        raise BundleError(
            f"model {self.version}{where} does not match {what}: {'; '.join(detail)}. "
            "Retrain the model with this version of fraudlens (fraudlens train ...)."
        )

    # -- persistence -------------------------------------------------------------------
    def feature_spec(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feature_names": self.feature_names,
            "families": self.families,
            "feature_settings": self.feature_settings.model_dump(mode="json"),
        }

    def save(self, root: Path) -> Path:
        """Write ``root/<version>/`` atomically (built in a temporary sibling, then renamed)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        target = root / self.version
        staging = Path(tempfile.mkdtemp(prefix=f".{self.version}.", dir=root))
        try:
            (staging / MODEL_FILE).write_bytes(bytes(self.booster.save_raw(raw_format="ubj")))
            (staging / CALIBRATOR_FILE).write_text(dumps(self.calibrator.to_json()))
            self.anomaly.save(staging)
            (staging / FEATURE_SPEC_FILE).write_text(dumps(self.feature_spec()))
            (staging / THRESHOLD_FILE).write_text(dumps(self.threshold.to_json()))
            (staging / METRICS_FILE).write_text(dumps(self.metrics))
            (staging / REFERENCE_FILE).write_text(dumps(self.reference.to_json()))
            (staging / MANIFEST_FILE).write_text(dumps(self.manifest))
            os.chmod(staging, 0o755)
            if target.exists():
                # Same version = same inputs, so replacing is safe; move the old one aside first
                # so a reader never sees a half-written directory.
                old = Path(tempfile.mkdtemp(prefix=f".{self.version}.old.", dir=root))
                os.replace(target, old / self.version)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.path = target
        return target

    @classmethod
    def from_path(cls, path: Path, *, pipeline: Any | None = None, check_pipeline: bool = True) -> ModelBundle:
        """Load ``path`` (a ``DIR/<version>/`` directory) and check it against the feature pipeline.

        ``pipeline`` defaults to ``FeaturePipeline.from_settings`` with the bundle's
        own feature settings; pass ``check_pipeline=False`` only for offline inspection.
        """
        path = Path(path)
        if not path.is_dir():
            raise BundleError(f"model bundle {path} does not exist or is not a directory; pass the DIR/<version>/ "
                              "directory that `fraudlens train` printed")
        missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
        if missing:
            versions = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / MANIFEST_FILE).is_file())
            if versions:
                raise BundleError(f"{path} is a directory of model bundles, not one bundle; pass one of: "
                                  + ", ".join(str(path / v) for v in versions))
            raise BundleError(f"model bundle {path} is incomplete: missing {', '.join(missing)}; "
                              "it was not written by `fraudlens train` or was damaged - retrain it")
        spec = _read_json(path, FEATURE_SPEC_FILE)
        manifest = _read_json(path, MANIFEST_FILE)
        if spec.get("format") != FORMAT or manifest.get("format") != FORMAT:
            raise BundleError(f"model bundle {path} has format {spec.get('format')!r}; this fraudlens reads format "
                              f"{FORMAT} - retrain the model with this version")
        try:
            names = [str(n) for n in spec["feature_names"]]
            families = {str(k): str(v) for k, v in spec["families"].items()}
            feature_settings = FeatureSettings.model_validate(spec["feature_settings"])
            calibrator = Calibrator.from_json(_read_json(path, CALIBRATOR_FILE))
            threshold = ThresholdPolicy.from_json(_read_json(path, THRESHOLD_FILE))
            anomaly = AnomalyDetector.load(path)
            reference = BinnedReference.from_json(_read_json(path, REFERENCE_FILE))
            version = str(manifest["version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"model bundle {path} is malformed ({type(exc).__name__}: {exc}); retrain it") from None
        booster = _load_booster(path / MODEL_FILE, len(names))
        bundle = cls(
            version=version, feature_names=names, families=families, feature_settings=feature_settings,
            booster=booster, calibrator=calibrator, threshold=threshold, anomaly=anomaly,
            manifest=manifest, metrics=_read_json(path, METRICS_FILE), reference=reference, path=path,
        )
        if anomaly.medians.size != len(names):
            raise BundleError(f"model bundle {path}: anomaly detector has {anomaly.medians.size} features, "
                              f"feature spec has {len(names)}; the bundle is inconsistent - retrain it")
        bundle.compile()
        if check_pipeline:
            if pipeline is None:
                from features.pipeline import FeaturePipeline

                pipeline = FeaturePipeline.from_settings(feature_settings)
            bundle.check_features(list(pipeline.feature_names))
        return bundle


def _read_json(path: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((path / name).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"model bundle {path}: {name} is not readable JSON ({exc}); retrain the model") from None
    if not isinstance(data, dict):
        raise BundleError(f"model bundle {path}: {name} must hold a JSON object")
    return data


def _load_booster(file: Path, n_features: int) -> xgb.Booster:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(file.read_bytes()))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise BundleError(f"model bundle {file.parent}: {file.name} is not an XGBoost model ({first}); retrain it") from None
    if booster.num_features() != n_features:
        raise BundleError(f"model bundle {file.parent}: booster has {booster.num_features()} features but "
                          f"feature_spec.json lists {n_features}; the bundle is inconsistent - retrain it")
    # Scoring is per request or per micro-batch: one thread avoids pool wake-up cost per call.
    booster.set_param({"nthread": 1})
    return booster
