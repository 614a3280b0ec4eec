"""Shared machinery of the built-in families: positional online values and a batch context.

Every built-in family implements three things once:

* ``values_one(tx, state)`` — the features of one event as a list in
  ``feature_names`` order, without touching the state;
* ``update_one(tx, state)`` — fold the event into the state;
* ``transform_context(ctx)`` — the vectorised twin over a whole frame.

``transform_one`` (the dict form required by :class:`~features.base.FeatureFamily`)
and ``transform_many`` are derived from them, so each family has a single place per
execution. ``step_one`` (values then update) is what the online engine calls; a
family may fuse the two for speed, and the parity suite checks the fused path
against the plain one.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from features.base import FeatureFamily
from features.families._context import BatchContext
from features.schema import Transaction

NAN = float("nan")


class Family(FeatureFamily):
    """Base of the built-in families (positional online values, shared batch context)."""

    #: How long an entity's state stays useful after its last event (ms); drives store TTLs.
    horizon_ms: int = 0

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    _names: tuple[str, ...] = ()

    @abstractmethod
    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        """Features of ``tx`` in ``feature_names`` order; must not modify ``state``."""

    @abstractmethod
    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        """(n, k) float64 features in the context's processing (time-sorted) order."""

    def transform_one(self, tx: Transaction, state: Any) -> dict[str, float]:
        return dict(zip(self._names, self.values_one(tx, state), strict=True))

    def step_one(self, tx: Transaction, state: Any) -> list[float]:
        """``values_one`` then ``update_one``: the online engine's call per event."""
        values = self.values_one(tx, state)
        self.update_one(tx, state)
        return values

    def transform_many(self, frame: pd.DataFrame) -> pd.DataFrame:
        ctx = BatchContext(frame)
        return pd.DataFrame(
            ctx.unsort(self.transform_context(ctx)), index=frame.index, columns=self.feature_names
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
