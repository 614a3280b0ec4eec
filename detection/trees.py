"""A compiled copy of the booster's trees for low-latency margins.

``Booster.inplace_predict`` costs a few hundred microseconds per call whatever the
batch size (the C++ side builds a proxy matrix and predictor state each time),
which is most of the budget of a single-row API request. The trees themselves are
tiny: walking ~100 trees of depth 6 is a few microseconds in compiled code.

:class:`CompiledTrees` reads the booster's JSON model into flat arrays and walks
them with a numba kernel that follows XGBoost's rules exactly (inputs and
thresholds in float32, ``x < threshold`` goes left, a missing value takes the
node's default branch, leaves summed in float32 onto the base margin), so margins
are bit-identical to XGBoost's. It is only used after it reproduces
``inplace_predict`` on probe rows built from every split threshold; if it does not (an unsupported model kind, a future XGBoost change), the
bundle falls back to ``inplace_predict`` and logs why.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

if TYPE_CHECKING:
    import xgboost as xgb

log = logging.getLogger(__name__)

#: Agreement required with inplace_predict on the probe rows (float32 rounding only).
TOLERANCE = 1e-5


@njit(cache=True, nogil=True)
def _margins(X, feature, threshold, left, right, default_left, value, roots, base, out):
    # Tree-major order keeps one tree in cache while all rows walk it; each row still
    # adds its leaves in tree order, as XGBoost does, so the float32 sums are identical.
    for i in range(X.shape[0]):
        out[i] = base
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                v = X[i, feature[node]]
                if np.isnan(v):
                    node = left[node] if default_left[node] else right[node]
                elif v < threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            out[i] += value[node]


class CompiledTrees:
    """Flat arrays of every tree (global node indices) and the base margin; float32 like XGBoost."""

    def __init__(
        self,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        default_left: np.ndarray,
        value: np.ndarray,
        roots: np.ndarray,
        n_features: int,
        base: np.float32,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.left = left
        self.right = right
        self.default_left = default_left
        self.value = value
        self.roots = roots
        self.n_features = n_features
        self.base = base

    @classmethod
    def from_booster(cls, booster: xgb.Booster) -> CompiledTrees | None:
        """The compiled trees, or None (with a logged reason) when they cannot be trusted."""
        try:
            compiled = cls._parse(json.loads(bytes(booster.save_raw(raw_format="json"))), booster.num_features())
        except (KeyError, TypeError, ValueError) as exc:
            log.info("compiled trees unavailable (%s); scoring uses xgboost inplace_predict", exc)
            return None
        probes = compiled._probes()
        reference = np.asarray(booster.inplace_predict(probes, predict_type="margin"), dtype=np.float64)
        compiled.base = compiled._exact_base(probes, reference)
        error = float(np.max(np.abs(compiled.margin(probes) - reference) / (1.0 + np.abs(reference))))
        if not error <= TOLERANCE:
            log.warning("compiled trees disagree with xgboost by %.3g; scoring uses xgboost inplace_predict", error)
            return None
        return compiled

    @classmethod
    def _parse(cls, model: dict[str, Any], n_features: int) -> CompiledTrees:
        booster = model["learner"]["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise ValueError(f"booster kind {booster.get('name')!r} is not gbtree")
        trees = booster["model"]["trees"]
        params = model["learner"]["learner_model_param"]
        if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) > 1:
            raise ValueError("multi-output models are not supported")
        # base_score is stored on the objective's output scale ("[2.41E-1]" in XGBoost 3).
        base_score = float(str(params["base_score"]).strip("[]").split(",")[0])
        objective = model["learner"]["objective"]["name"]
        if objective in ("binary:logistic", "reg:logistic"):
            base = np.float32(np.log(base_score / (1.0 - base_score)))
        elif objective in ("binary:logitraw", "reg:squarederror"):
            base = np.float32(base_score)
        else:
            raise ValueError(f"objective {objective!r} is not supported")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "default", "value")}
        roots, offset = [], 0
        for tree in trees:
            if any(int(s) != 0 for s in tree.get("split_type", [])):
                raise ValueError("categorical splits are not supported")
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            leaf = left < 0
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
            parts["feature"].append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            parts["threshold"].append(np.where(leaf, np.float32(0), conditions))
            parts["left"].append(np.where(leaf, -1, left + offset))
            parts["right"].append(np.where(leaf, -1, right + offset))
            parts["default"].append(np.asarray(tree["default_left"], dtype=bool))
            # JSON models keep a leaf's output in split_conditions.
            parts["value"].append(np.where(leaf, conditions, np.float32(0)))
            roots.append(offset)
            offset += left.size
        if not roots:
            raise ValueError("the booster has no trees")
        return cls(
            np.concatenate(parts["feature"]), np.concatenate(parts["threshold"]).astype(np.float32),
            np.concatenate(parts["left"]), np.concatenate(parts["right"]), np.concatenate(parts["default"]),
            np.concatenate(parts["value"]).astype(np.float32), np.asarray(roots, dtype=np.int64), n_features, base,
        )

    def _exact_base(self, probes: np.ndarray, reference: np.ndarray) -> np.float32:
        """The float32 base margin XGBoost really adds.

        The JSON model prints ``base_score`` with 8 significant digits and XGBoost
        maps it to a margin in float32 arithmetic, so the value we derive can be an
        ulp or two off. Of the nearby float32 values, keep the one that reproduces
        the reference margins exactly (or most often).
        """
        candidates = [self.base]
        down = up = self.base
        for _ in range(4):
            down, up = np.nextafter(down, np.float32(-np.inf)), np.nextafter(up, np.float32(np.inf))
            candidates += [down, up]
        exact = []
        for candidate in candidates:
            self.base = np.float32(candidate)
            exact.append(int(np.sum(self.margin(probes) == reference)))
        return np.float32(candidates[int(np.argmax(exact))])

    def _probes(self, n: int = 512) -> np.ndarray:
        """Rows on, just below and just above every split threshold, with missing values mixed in."""
        rng = np.random.default_rng(0)
        probes = rng.normal(size=(n, self.n_features)).astype(np.float32)
        internal = self.left >= 0
        for j in range(self.n_features):
            cuts = self.threshold[internal & (self.feature == j)]
            if cuts.size:
                picked = rng.choice(cuts, size=n)
                below = np.nextafter(picked, np.float32(-np.inf))
                above = np.nextafter(picked, np.float32(np.inf))
                probes[:, j] = np.choose(rng.integers(0, 3, size=n), [below, picked, above])
        probes[rng.random(probes.shape) < 0.15] = np.nan
        return probes.astype(np.float64)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Margins of ``X`` (rows x n_features, NaN = missing) as float64."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(X32.shape[0], dtype=np.float32)
        _margins(X32, self.feature, self.threshold, self.left, self.right, self.default_left, self.value,
                 self.roots, self.base, out)
        return out.astype(np.float64)
