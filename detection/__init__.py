"""Detection: training, model bundle + registry, scoring, calibration, threshold policy, metrics.

>>> from detection import ModelBundle, train, score_window  # doctest: +SKIP
>>> bundle = ModelBundle.from_path("runs/models/fl-3f9a0c1d2e4b")  # doctest: +SKIP
>>> bundle.score(X)  # calibrated fraud probabilities  # doctest: +SKIP

Heavy libraries (xgboost, scikit-learn) are imported where they are used, so
importing this package stays cheap.
"""

from __future__ import annotations

from detection.anomaly import AnomalyDetector
from detection.baselines import run_comparison
from detection.bundle import BundleError, ModelBundle, file_sha256, version_id
from detection.calibration import CalibrationError, Calibrator, ThresholdPolicy
from detection.frames import FeatureMatrix, compute_features, parse_day, utc_window_mask
from detection.metrics import (
    EVALUATION_KEYS,
    auc_roc,
    average_precision,
    card_precision_at_k,
    evaluate,
    fraud_amount_caught_share,
    precision_recall_at_threshold,
    recall_at_fpr,
)
from detection.registry import ModelRegistry, RegistryError
from detection.scoring import score_window
from detection.training import TrainingError, train, train_on_features

__all__ = [
    "EVALUATION_KEYS",
    "AnomalyDetector",
    "BundleError",
    "CalibrationError",
    "Calibrator",
    "FeatureMatrix",
    "ModelBundle",
    "ModelRegistry",
    "RegistryError",
    "ThresholdPolicy",
    "TrainingError",
    "auc_roc",
    "average_precision",
    "card_precision_at_k",
    "compute_features",
    "evaluate",
    "file_sha256",
    "fraud_amount_caught_share",
    "parse_day",
    "precision_recall_at_threshold",
    "recall_at_fpr",
    "run_comparison",
    "score_window",
    "train",
    "train_on_features",
    "utc_window_mask",
    "version_id",
]
