"""Population stability of the score and every feature: training reference vs evaluated window.

PSI against the bundle's ``reference`` (decile bins of the training window, see
:mod:`detection.drift`), flagged at 0.1 (shift) and 0.25 (major shift). The check
passes when the score and each of the top features (the first ten of
``reference.importance``, by total gain) stay below :data:`detection.drift.PSI_ALERT`;
drift in a feature the model barely uses is shown but does not fail it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from detection.drift import PSI_ALERT, PSI_WARN, BinnedReference, psi_flag

TOP_FEATURES = 10


def _entry(value: float) -> dict[str, Any]:
    return {"psi": float(value) if math.isfinite(value) else None, "flag": psi_flag(value)}


def stability_section(reference: BinnedReference, scores: ArrayLike, X: np.ndarray, feature_names: list[str], *,
                      top_n: int = TOP_FEATURES) -> dict[str, Any]:
    """The report's ``stability`` block for window ``scores`` and feature rows ``X`` (model order)."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[1] != len(feature_names):
        raise ValueError(f"{X.shape[1]} feature columns but {len(feature_names)} names")
    score = _entry(reference.score.psi(scores))
    features: dict[str, Any] = {}
    for j, name in enumerate(feature_names):
        binned = reference.features.get(name)
        features[name] = _entry(binned.psi(X[:, j])) if binned is not None else {"psi": None, "flag": "unknown"}
    top = reference.top_features(top_n)

    def below(entry: dict[str, Any]) -> bool:
        return entry["psi"] is not None and entry["psi"] < PSI_ALERT

    passed = below(score) and all(below(features[name]) for name in top if name in features)
    ranked = sorted(features, key=lambda n: -(features[n]["psi"] or 0.0))
    return {
        "score": score,
        "features": features,
        "top_features": top,
        "psi_limit": PSI_ALERT,
        "psi_warn": PSI_WARN,
        "passed": bool(passed),
        "reference_window": dict(reference.window),
        "reference_rows": reference.n_rows,
        "shifted_features": [n for n in ranked if features[n]["flag"] in ("shift", "major shift")],
    }
