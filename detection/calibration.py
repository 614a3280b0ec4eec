"""Probability calibration and the alert threshold policy, both stored as JSON.

Calibration maps the booster's margin (log-odds under the training weights) to a
probability of fraud on the natural base rate. Two methods:

* ``platt`` (default): ``p = sigmoid(a * margin + b)``. Two parameters survive a
  calibration slice with a few dozen frauds, and a strictly increasing map keeps
  the model's ranking (AUC, AP, top-k) exactly. ``scale_pos_weight`` shifts the
  log-odds by roughly a constant, which is exactly what ``b`` undoes.
* ``isotonic``: a monotone step function; more flexible, needs many more frauds,
  and creates ties that blur top-k ranking.

The threshold policy is fitted on calibrated scores of the calibration slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

CalibrationMethod = Literal["platt", "isotonic"]


class CalibrationError(ValueError):
    """Calibration or threshold fitting is impossible on the data given."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Clipping keeps exp finite; |z| > 500 is already 0/1 in float64. Cheaper than
    # sign-splitting, which matters on the single-row scoring path.
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def _fit_platt(margin: np.ndarray, y: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Newton's method on the logistic log-likelihood with Platt's smoothed targets.

    Written out (rather than sklearn) so the result is a deterministic function of
    the inputs and the fit is two parameters we can read in a JSON file.
    """
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    # Platt (1999): targets pulled away from 0/1 to avoid infinite slopes on separable data.
    t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    a, b = 1.0, math.log((n_pos + 1.0) / (n_neg + 1.0)) - float(np.mean(margin))
    for _ in range(max_iter):
        p = _sigmoid(a * margin + b)
        w = p * (1.0 - p) + 1e-12
        g = np.array([np.dot(p - t, margin), np.sum(p - t)])
        h = np.array([[np.dot(w * margin, margin), np.dot(w, margin)], [np.dot(w, margin), np.sum(w)]])
        h += np.eye(2) * 1e-9
        step = np.linalg.solve(h, g)
        a, b = a - float(step[0]), b - float(step[1])
        if float(np.abs(step).max()) < 1e-10:
            break
    return a, b


@dataclass
class Calibrator:
    """Margin -> calibrated probability. ``params``: Platt ``a``, ``b`` or isotonic ``x``, ``y`` knots."""

    method: CalibrationMethod
    params: dict[str, Any]

    @classmethod
    def fit(cls, margin: ArrayLike, y_true: ArrayLike, method: CalibrationMethod = "platt") -> Calibrator:
        m = np.asarray(margin, dtype=np.float64)
        y = np.asarray(y_true, dtype=np.float64)
        if y.size == 0 or y.sum() == 0 or y.sum() == y.size:
            raise CalibrationError(
                f"the calibration slice needs both frauds and non-frauds (got {int(y.sum())} frauds in {y.size} rows); "
                "widen the training window or use data with more labelled fraud"
            )
        if method == "platt":
            a, b = _fit_platt(m, y)
            if not a > 0:
                raise CalibrationError(
                    f"Platt calibration found a non-increasing map (a={a:.4g}): the model ranks the calibration "
                    "slice no better than chance; check the labels and the training window"
                )
            return cls("platt", {"a": a, "b": b})
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(m, y)
            return cls("isotonic", {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()})
        raise CalibrationError(f"unknown calibration method {method!r}; use 'platt' or 'isotonic'")

    def __post_init__(self) -> None:
        # Cache arrays once so the scoring hot path does no dict lookups or conversions.
        if self.method == "platt":
            self._a = float(self.params["a"])
            self._b = float(self.params["b"])
        else:
            self._x = np.asarray(self.params["x"], dtype=np.float64)
            self._y = np.asarray(self.params["y"], dtype=np.float64)

    def apply(self, margin: np.ndarray) -> np.ndarray:
        if self.method == "platt":
            return _sigmoid(self._a * np.asarray(margin, dtype=np.float64) + self._b)
        return np.interp(margin, self._x, self._y)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        method = data.get("method")
        params = data.get("params")
        if method not in ("platt", "isotonic") or not isinstance(params, dict):
            raise ValueError(f"unknown calibrator format (method={method!r})")
        needed = ("a", "b") if method == "platt" else ("x", "y")
        if any(name not in params for name in needed):
            raise ValueError(f"{method} calibrator needs parameters {needed}, got {sorted(params)}")
        return cls(method, params)


PolicyKind = Literal["alert_rate", "precision"]


@dataclass
class ThresholdPolicy:
    """Alert when the calibrated score is at or above ``threshold``.

    ``fit`` picks the threshold on the calibration slice for either a target alert
    rate (share of transactions alerted) or a target precision (the lowest
    threshold whose alerts reach it). ``achieved`` records what the slice gave.
    """

    kind: PolicyKind
    target: float
    threshold: float
    achieved: dict[str, Any] = field(default_factory=dict)

    def decide(self, scores: ArrayLike) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64) >= self.threshold

    @classmethod
    def fit(
        cls,
        scores: ArrayLike,
        y_true: ArrayLike | None = None,
        *,
        target_alert_rate: float | None = 0.005,
        target_precision: float | None = None,
    ) -> ThresholdPolicy:
        s = np.asarray(scores, dtype=np.float64)
        if s.size == 0:
            raise CalibrationError("cannot fit a threshold on an empty calibration slice")
        order = np.argsort(-s, kind="stable")
        ranked = s[order]
        if target_precision is not None:
            if y_true is None:
                raise CalibrationError("a target precision needs labels")
            hits = np.cumsum(np.asarray(y_true, dtype=np.float64)[order])
            precision = hits / np.arange(1, s.size + 1)
            # Only cut between distinct scores: alerts are score >= threshold, so ties alert together.
            cut_ok = np.append(ranked[1:] < ranked[:-1], True)
            reachable = np.flatnonzero(cut_ok & (precision >= target_precision))
            reached = reachable.size > 0
            # Lowest threshold reaching the target = deepest reachable cut; if none, the most precise cut.
            idx = int(reachable[-1]) if reached else int(np.flatnonzero(cut_ok)[np.argmax(precision[cut_ok])])
            policy = cls("precision", float(target_precision), float(ranked[idx]))
            policy.achieved = {"reached": bool(reached)}
        else:
            if target_alert_rate is None:
                raise CalibrationError("set either target_alert_rate or target_precision")
            n_alerts = max(1, math.ceil(target_alert_rate * s.size))
            policy = cls("alert_rate", float(target_alert_rate), float(ranked[min(n_alerts, s.size) - 1]))
        alerts = policy.decide(s)
        policy.achieved["alert_rate"] = float(alerts.mean())
        if y_true is not None:
            y = np.asarray(y_true, dtype=np.float64)
            policy.achieved["precision"] = float(y[alerts].mean()) if alerts.any() else None
            policy.achieved["recall"] = float(y[alerts].sum() / y.sum()) if y.sum() else None
        policy.achieved["n"] = int(s.size)
        return policy

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "threshold": self.threshold, "achieved": self.achieved}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThresholdPolicy:
        if data.get("kind") not in ("alert_rate", "precision") or "threshold" not in data:
            raise ValueError(f"unknown threshold policy format (kind={data.get('kind')!r})")
        return cls(data["kind"], float(data["target"]), float(data["threshold"]), dict(data.get("achieved", {})))
