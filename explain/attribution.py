"""SHAP attributions of XGBoost scores, in log-odds (raw margin) space.

:class:`TreeAttributor` wraps ``shap.TreeExplainer`` over the bundle's booster;
calling :meth:`TreeAttributor.attribute` returns an :class:`Attribution`, a value
object that can be sliced, grouped by feature family and serialised. Its core
promise, ``base_value + values.sum() == margin``, is checked against the model's
own margin every time an attribution is made (:class:`~explain.errors.AdditivityError`).

>>> attributor = TreeAttributor.from_bundle(bundle).setup()       # doctest: +SKIP
>>> attr = attributor.attribute(X)                                # (n, f) batch
>>> attr[0].top(3)                                                # doctest: +SKIP
[Contribution(name='amount_to_mean_30d', value=1.9, feature_value=12.3), ...]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from explain.errors import AdditivityError, FeatureMismatchError

ADDITIVITY_TOLERANCE = 1e-4

MarginFn = Callable[[Any], np.ndarray]


class Contribution(NamedTuple):
    """One feature's share of one score: its SHAP value (log-odds) and the value it had."""

    name: str
    value: float
    feature_value: float


@dataclass(frozen=True, eq=False)
class Attribution:
    """SHAP values for one transaction (1-D) or a batch (2-D, one row per transaction).

    ``values`` and ``feature_values`` share a shape; ``base_value`` is the explainer's
    expected margin; ``ids`` optionally names the rows (transaction ids).
    """

    values: np.ndarray
    base_value: float
    feature_values: np.ndarray
    feature_names: tuple[str, ...]
    model_version: str
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        feats = np.asarray(self.feature_values, dtype=np.float64)
        if values.ndim not in (1, 2) or values.shape != feats.shape:
            raise ValueError(f"values {values.shape} and feature_values {feats.shape} must share a 1-D or 2-D shape")
        if values.shape[-1] != len(self.feature_names):
            raise FeatureMismatchError(f"{values.shape[-1]} values for {len(self.feature_names)} feature names")
        if self.ids is not None and (values.ndim == 1 or len(self.ids) != values.shape[0]):
            raise ValueError("ids name the rows of a batch attribution, one per row")
        values.setflags(write=False)
        feats.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "feature_values", feats)
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "base_value", float(self.base_value))

    # -- shape -------------------------------------------------------------
    @property
    def is_batch(self) -> bool:
        return self.values.ndim == 2

    def __len__(self) -> int:
        return self.values.shape[0] if self.is_batch else 1

    def __getitem__(self, rows: int | slice | Sequence[int] | np.ndarray) -> Attribution:
        if not self.is_batch:
            raise TypeError("a single-row attribution cannot be indexed by row")
        if isinstance(rows, int | np.integer):
            return Attribution(self.values[rows], self.base_value, self.feature_values[rows], self.feature_names,
                               self.model_version)
        index = np.arange(len(self))[rows]
        ids = None if self.ids is None else tuple(self.ids[i] for i in index)
        return Attribution(self.values[index], self.base_value, self.feature_values[index], self.feature_names,
                           self.model_version, ids)

    def __iter__(self) -> Iterator[Attribution]:
        if not self.is_batch:
            yield self
            return
        for i in range(len(self)):
            yield self[i]

    # -- the promise ---------------------------------------------------------
    @property
    def margin(self) -> np.ndarray | float:
        """base_value + sum of values: the model's log-odds this attribution explains."""
        total = self.base_value + self.values.sum(axis=-1)
        return total if self.is_batch else float(total)

    def check_additivity(self, margin: np.ndarray | float, tolerance: float = ADDITIVITY_TOLERANCE) -> Attribution:
        """Raise :class:`AdditivityError` unless base + sum(values) equals ``margin`` within ``tolerance``."""
        expected = np.atleast_1d(np.asarray(margin, dtype=np.float64))
        got = np.atleast_1d(np.asarray(self.margin, dtype=np.float64))
        if expected.shape != got.shape:
            raise ValueError(f"margin has shape {expected.shape}, attribution explains {got.shape}")
        error = np.abs(got - expected)
        if not np.all(error <= tolerance):
            row = int(np.nanargmax(np.where(np.isnan(error), np.inf, error)))
            raise AdditivityError(float(error[row]), tolerance, row)
        return self

    # -- views -----------------------------------------------------------------
    def feature(self, name: str) -> np.ndarray | float:
        """SHAP value(s) of one feature."""
        column = self.values[..., self._index(name)]
        return column if self.is_batch else float(column)

    def top(self, k: int | None = None) -> list[Contribution]:
        """Features of a single row by decreasing absolute SHAP value (ties: name order)."""
        if self.is_batch:
            raise TypeError("top() is per transaction: index the batch first, e.g. attribution[0].top(5)")
        order = sorted(range(len(self.feature_names)), key=lambda i: (-abs(self.values[i]), self.feature_names[i]))
        return [
            Contribution(self.feature_names[i], float(self.values[i]), float(self.feature_values[i]))
            for i in order[: k if k is not None else len(order)]
        ]

    def group(self, family_of: Mapping[str, str]) -> Attribution:
        """Sum SHAP values by feature family; additivity is kept, feature values become NaN.

        Families appear in order of their first feature; unmapped features form their own group.
        """
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self.feature_names):
            groups.setdefault(family_of.get(name, name), []).append(i)
        values = np.stack([self.values[..., idx].sum(axis=-1) for idx in groups.values()], axis=-1)
        return Attribution(values, self.base_value, np.full(values.shape, np.nan), tuple(groups), self.model_version,
                           self.ids)

    def as_dict(self) -> dict[str, float]:
        """feature -> SHAP value of a single row."""
        if self.is_batch:
            raise TypeError("as_dict() is per transaction: index the batch first")
        return dict(zip(self.feature_names, map(float, self.values), strict=True))

    def to_frame(self) -> pd.DataFrame:
        """One row per transaction, one column per feature (SHAP values); index = ids when known."""
        values = self.values if self.is_batch else self.values[None, :]
        return pd.DataFrame(values, columns=list(self.feature_names), index=list(self.ids) if self.ids else None)

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; NaN feature values become None."""
        return {
            "model_version": self.model_version,
            "base_value": self.base_value,
            "feature_names": list(self.feature_names),
            "values": self.values.tolist(),
            "feature_values": _nan_to_none(self.feature_values.tolist()),
            "ids": list(self.ids) if self.ids is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribution:
        feats = np.array(_none_to_nan(data["feature_values"]), dtype=np.float64)
        ids = data.get("ids")
        return cls(np.asarray(data["values"], dtype=np.float64), float(data["base_value"]), feats,
                   tuple(data["feature_names"]), str(data["model_version"]), tuple(ids) if ids is not None else None)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.values.shape))
        return f"Attribution({shape}, base_value={self.base_value:.4f}, model_version={self.model_version!r})"

    def _index(self, name: str) -> int:
        try:
            return self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"no feature {name!r} in this attribution") from None


class TreeAttributor:
    """``shap.TreeExplainer`` on an XGBoost booster, checked against the model's margin.

    ``margin`` computes the model's log-odds for a float (n, f) array in model
    order (the bundle's ``margin``); by default the booster's own margin prediction.
    """

    def __init__(
        self,
        booster: Any,
        feature_names: Sequence[str],
        model_version: str,
        *,
        margin: MarginFn | None = None,
        tolerance: float = ADDITIVITY_TOLERANCE,
        n_threads: int = 1,
    ) -> None:
        self.booster = booster
        self.n_threads = n_threads
        self.feature_names = tuple(feature_names)
        self.model_version = model_version
        self._margin = margin
        self.tolerance = tolerance
        self._explainer: Any = None

    @classmethod
    def from_bundle(cls, bundle: Any, *, tolerance: float = ADDITIVITY_TOLERANCE) -> TreeAttributor:
        """From a ``detection.bundle.ModelBundle`` (booster, feature names, version, margin)."""
        return cls(bundle.booster, bundle.feature_names, str(bundle.version), margin=bundle.margin, tolerance=tolerance)

    def setup(self) -> TreeAttributor:
        """Build the SHAP explainer (reads every tree once; ~ms per hundred trees)."""
        import shap

        booster_names = getattr(self.booster, "feature_names", None)
        if booster_names is not None and tuple(booster_names) != self.feature_names:
            raise FeatureMismatchError(
                f"the booster was trained on {len(booster_names)} features in another order than the "
                f"{len(self.feature_names)} given; first difference: "
                f"{_first_difference(tuple(booster_names), self.feature_names)}"
            )
        # Passing the Booster itself keeps shap on its native XGBoost loader (raw margin output).
        self._explainer = shap.TreeExplainer(self.booster, model_output="raw")
        return self

    @property
    def explainer(self) -> Any:
        """The underlying ``shap.TreeExplainer`` (after :meth:`setup`)."""
        if self._explainer is None:
            raise RuntimeError("call setup() first")
        return self._explainer

    def matrix(self, X: Any) -> np.ndarray:
        """Features as a float64 (n, f) array in the model's order; a DataFrame is reordered by name."""
        if isinstance(X, pd.DataFrame):
            missing = [n for n in self.feature_names if n not in X.columns]
            if missing:
                raise FeatureMismatchError(f"feature frame lacks {len(missing)} model feature(s), e.g. {missing[:3]}")
            X = X.loc[:, list(self.feature_names)]
        array = np.asarray(X, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != len(self.feature_names):
            raise FeatureMismatchError(f"expected (n, {len(self.feature_names)}) features, got shape {array.shape}")
        return array

    def model_margin(self, X: np.ndarray) -> np.ndarray:
        """The model's own log-odds for X (the bundle's ``margin``, else the booster's)."""
        if self._margin is not None:
            return np.asarray(self._margin(X), dtype=np.float64).reshape(-1)
        return np.asarray(self.booster.inplace_predict(X, predict_type="margin"), dtype=np.float64).reshape(-1)

    def attribute(self, X: Any, *, ids: Sequence[str] | None = None, check: bool = True) -> Attribution:
        """Batch attribution of an (n, f) matrix or DataFrame; additivity is checked unless ``check=False``."""
        if self._explainer is None:
            raise RuntimeError("call setup() before attribute()")
        import xgboost as xgb

        array = self.matrix(X)
        # shap hands XGBoost boosters to xgboost's own C++ TreeSHAP through a DMatrix. Built by shap,
        # that DMatrix uses every core: on a busy 2-core host that costs ~20 ms per alert in thread
        # wake-ups, so build it here with a fixed thread count (1 suits single alerts and micro-batches).
        matrix = xgb.DMatrix(array, feature_names=list(self.feature_names), nthread=self.n_threads)
        values = np.asarray(self._explainer.shap_values(matrix, check_additivity=False), dtype=np.float64)
        # shap sets expected_value from the trees once it has explained something: read it after.
        base = float(np.ravel(self._explainer.expected_value)[0])
        result = Attribution(values, base, array, self.feature_names, self.model_version,
                             tuple(ids) if ids is not None else None)
        if check:
            result.check_additivity(self.model_margin(array), self.tolerance)
        return result

    def attribute_one(self, x: Any, *, check: bool = True) -> Attribution:
        """Attribution of one transaction's feature vector (or one-row frame)."""
        return self.attribute(x, check=check)[0]


def _first_difference(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"position {i}: model has {x!r}, given {y!r}"
    return f"lengths {len(a)} vs {len(b)}"


def _nan_to_none(data: Any) -> Any:
    if isinstance(data, list):
        return [_nan_to_none(v) for v in data]
    return None if isinstance(data, float) and math.isnan(data) else data


def _none_to_nan(data: Any) -> Any:
    if isinstance(data, list):
        return [_none_to_nan(v) for v in data]
    return math.nan if data is None else data
