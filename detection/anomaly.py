"""Unsupervised anomaly detector kept beside the supervised model.

An IsolationForest (scikit-learn, seeded) is fitted on median-imputed features.
It catches patterns the labels have not taught the booster yet; its score is a
second opinion on an alert card, not part of the decision.

The fitted trees are exported to plain arrays (``anomaly_trees.npy``) and scored
here in numpy, reproducing ``IsolationForest.score_samples`` exactly. That keeps
pickles out of the bundle (no code execution on load, no scikit-learn version
lock-in) and gives byte-identical files for the same data and seed.

Scores are normalised by the training distribution: ``anomaly_score(x)`` is the
share of training rows that were less anomalous than ``x`` (0 = typical, 1 = more
anomalous than anything seen in training).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

N_QUANTILES = 101
FIT_SAMPLE = 100_000
#: Rows per chunk when scoring: bounds the (rows x trees) index arrays to a few MB.
CHUNK = 4096
# Node table columns: feature (-1 at leaves), threshold, left child, right child,
# leaf value = edges from the root + expected remaining path length c(n_samples).
_FEATURE, _THRESHOLD, _LEFT, _RIGHT, _VALUE = range(5)


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n) of Liu et al.: the average path length of an unsuccessful BST search (same as scikit-learn)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class AnomalyDetector:
    """Isolation-forest anomaly score in [0, 1], higher = more anomalous.

    >>> rng = np.random.default_rng(0)
    >>> det = AnomalyDetector.fit(rng.normal(size=(500, 3)), seed=0)
    >>> bool(det.score(np.array([[8.0, 8.0, 8.0]]))[0] > 0.99)
    True
    """

    def __init__(
        self,
        nodes: np.ndarray,
        roots: np.ndarray,
        max_depth: int,
        denominator: float,
        medians: np.ndarray,
        quantiles: np.ndarray,
        params: dict[str, Any],
    ) -> None:
        self.nodes = nodes
        self.roots = roots
        self.max_depth = max_depth
        self.denominator = denominator
        self.medians = medians
        self.quantiles = quantiles
        self.params = params
        # Split the node table once; scoring indexes these arrays directly.
        self._feature = np.maximum(nodes[:, _FEATURE], 0).astype(np.intp)
        self._threshold = nodes[:, _THRESHOLD]
        self._left = nodes[:, _LEFT].astype(np.intp)
        self._right = nodes[:, _RIGHT].astype(np.intp)
        self._value = nodes[:, _VALUE]
        self._levels = np.linspace(0.0, 1.0, N_QUANTILES)

    @classmethod
    def fit(
        cls, X: np.ndarray, *, seed: int, n_estimators: int = 100, max_samples: int = 256
    ) -> AnomalyDetector:
        from sklearn.ensemble import IsolationForest

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"the anomaly detector needs at least 2 rows of features, got shape {X.shape}")
        # Each tree sees only max_samples rows, and 101 quantiles are well estimated from
        # 100k, so a seeded sample stands in for millions of training rows.
        if X.shape[0] > FIT_SAMPLE:
            X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], size=FIT_SAMPLE, replace=False))]
        finite = np.where(np.isfinite(X), X, np.nan)
        with np.errstate(all="ignore"):
            medians = np.nanmedian(np.where(np.isnan(finite).all(axis=0), 0.0, finite), axis=0)
        medians = np.nan_to_num(medians, nan=0.0)
        imputed = cls._impute(X, medians)
        n_samples = min(max_samples, imputed.shape[0])
        forest = IsolationForest(n_estimators=n_estimators, max_samples=n_samples, random_state=seed, n_jobs=1)
        forest.fit(imputed)
        nodes, roots, max_depth = cls._export(forest)
        params = {"n_estimators": n_estimators, "max_samples": n_samples, "seed": seed, "method": "isolation_forest"}
        denominator = float(n_estimators * _average_path_length(np.array([n_samples]))[0])
        det = cls(nodes, roots, max_depth, denominator, medians, np.zeros(N_QUANTILES), params)
        det.quantiles = np.quantile(det.raw_score(X), det._levels)
        return det

    @staticmethod
    def _impute(X: np.ndarray, medians: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.where(np.isfinite(X), X, medians)

    @staticmethod
    def _export(forest: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Flatten every tree into one node table with global child indices; leaves point to themselves."""
        tables, roots, offset, max_depth = [], [], 0, 0
        for est in forest.estimators_:
            tree = est.tree_
            n = tree.node_count
            depth = tree.compute_node_depths() - 1.0  # scikit-learn counts the root as depth 1
            leaf = tree.children_left < 0
            idx = np.arange(n) + offset
            table = np.zeros((n, 5))
            table[:, _FEATURE] = np.where(leaf, -1, tree.feature)
            table[:, _THRESHOLD] = np.where(leaf, 0.0, tree.threshold)
            table[:, _LEFT] = np.where(leaf, idx, tree.children_left + offset)
            table[:, _RIGHT] = np.where(leaf, idx, tree.children_right + offset)
            table[:, _VALUE] = np.where(leaf, depth + _average_path_length(tree.n_node_samples), 0.0)
            tables.append(table)
            roots.append(offset)
            offset += n
            max_depth = max(max_depth, int(depth.max()))
        return np.vstack(tables), np.asarray(roots, dtype=np.intp), max_depth

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """2^(-E[h(x)]/c(n)) in (0, 1], as ``-IsolationForest.score_samples``."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[0] > CHUNK:
            return np.concatenate([self.raw_score(X[i:i + CHUNK]) for i in range(0, X.shape[0], CHUNK)])
        # scikit-learn trees compare float32 inputs against float64 thresholds.
        imputed = self._impute(X, self.medians).astype(np.float32).astype(np.float64)
        rows = np.arange(imputed.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (imputed.shape[0], self.roots.size))
        for _ in range(self.max_depth):
            go_left = imputed[rows, self._feature[node]] <= self._threshold[node]
            node = np.where(go_left, self._left[node], self._right[node])
        depths = self._value[node].sum(axis=1)
        return np.power(2.0, -depths / self.denominator)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Normalised anomaly score in [0, 1] (share of training rows less anomalous)."""
        return np.interp(self.raw_score(X), self.quantiles, self._levels)

    # -- persistence -------------------------------------------------------------------
    TREES_FILE = "anomaly_trees.npy"
    META_FILE = "anomaly.json"

    def save(self, directory: Path) -> None:
        np.save(directory / self.TREES_FILE, self.nodes, allow_pickle=False)
        meta = {
            "format": 1,
            "params": self.params,
            "roots": self.roots.tolist(),
            "max_depth": self.max_depth,
            "denominator": self.denominator,
            "medians": self.medians.tolist(),
            "quantiles": self.quantiles.tolist(),
        }
        (directory / self.META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path) -> AnomalyDetector:
        meta = json.loads((directory / cls.META_FILE).read_text())
        if meta.get("format") != 1:
            raise ValueError(f"unknown anomaly detector format {meta.get('format')!r}")
        nodes = np.load(directory / cls.TREES_FILE, allow_pickle=False)
        if nodes.ndim != 2 or nodes.shape[1] != 5:
            raise ValueError(f"anomaly tree table has shape {nodes.shape}, expected (n, 5)")
        return cls(
            nodes,
            np.asarray(meta["roots"], dtype=np.intp),
            int(meta["max_depth"]),
            float(meta["denominator"]),
            np.asarray(meta["medians"], dtype=np.float64),
            np.asarray(meta["quantiles"], dtype=np.float64),
            dict(meta["params"]),
        )
