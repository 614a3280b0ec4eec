"""``calendar``: when in the (UTC) day and week the transaction happened. Stateless.

``hour_of_day`` (fractional, e.g. 13.5 at 13:30), ``day_of_week`` (0 = Monday),
``is_weekend`` (Saturday or Sunday) and ``is_night`` (hour < 6). Computed from epoch
milliseconds with floor division, so both executions do the same integer arithmetic
(1970-01-01 was a Thursday, weekday 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.base import MS_PER_DAY, MS_PER_HOUR
from features.families._base import Family
from features.families._context import BatchContext
from features.schema import Transaction

_EPOCH_WEEKDAY = 3
_NIGHT_END_HOUR = 6


class Calendar(Family):
    name = "calendar"
    entity = "none"
    _names = ("hour_of_day", "day_of_week", "is_weekend", "is_night")

    def values_one(self, tx: Transaction, state: object) -> list[float]:
        day, ms_of_day = divmod(tx.timestamp_ms, MS_PER_DAY)
        hour = ms_of_day / MS_PER_HOUR
        weekday = (day + _EPOCH_WEEKDAY) % 7
        return [
            hour,
            float(weekday),
            1.0 if weekday >= 5 else 0.0,
            1.0 if hour < _NIGHT_END_HOUR else 0.0,
        ]

    def values_many(self, txs: Sequence[Transaction]) -> np.ndarray:
        """``values_one`` of every event at once (the online engine's micro-batches)."""
        return self._values(np.fromiter((tx.timestamp_ms for tx in txs), dtype=np.int64, count=len(txs)))

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        return self._values(ctx.ts)

    @staticmethod
    def _values(ts: np.ndarray) -> np.ndarray:
        # Integer floor division and one true division of exact integers: the floats values_one computes.
        day, ms_of_day = np.divmod(ts, MS_PER_DAY)
        hour = ms_of_day / MS_PER_HOUR
        weekday = (day + _EPOCH_WEEKDAY) % 7
        return np.column_stack(
            [
                hour,
                weekday.astype(np.float64),
                (weekday >= 5).astype(np.float64),
                (hour < _NIGHT_END_HOUR).astype(np.float64),
            ]
        )
