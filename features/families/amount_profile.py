"""``amount_profile``: the amount itself and how it compares with the card's recent spending.

``amount``, ``amount_log1p``, ``amount_to_mean_7d`` / ``amount_to_mean_30d`` (amount
divided by the mean of the card's prior transactions in the window) and
``amount_to_max_30d`` (divided by the prior 30-day maximum). A ratio is NaN when the
window holds no prior transaction or its denominator is 0.

On its own the family keeps a 7/30-day window state per card. In a pipeline where
``card_velocity`` runs first with 7 d and 30 d windows, the online engine computes it
from that family's ``card_amount_mean_7d``, ``card_amount_mean_30d`` and
``card_amount_max_30d`` instead (:meth:`AmountProfile.online_inputs`): the same window
arithmetic gives the same floats, bit for bit, so the second window state, half the
per-card window work, is not needed. The parity suite runs both paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from features.base import MS_PER_DAY, FeatureFamily
from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.families._windows import (
    batch_window_stats,
    expire_windows,
    new_windows,
    window_push,
    window_stats,
)
from features.families.card_velocity import CardVelocity
from features.schema import Transaction

_WIDTHS = (7 * MS_PER_DAY, 30 * MS_PER_DAY)


def _ratio(amount: float, denominator: float) -> float:
    # NaN denominators (empty window) and zero both give a missing ratio.
    return amount / denominator if denominator == denominator and denominator != 0.0 else NAN


class AmountProfile(Family):
    name = "amount_profile"
    entity = "card"
    horizon_ms = _WIDTHS[-1]
    _names = (
        "amount",
        "amount_log1p",
        "amount_to_mean_7d",
        "amount_to_mean_30d",
        "amount_to_max_30d",
    )

    def new_state(self) -> dict[str, Any]:
        return new_windows(len(_WIDTHS))

    @staticmethod
    def _values(amount: float, stats: list[Any]) -> list[float]:
        n7, s7, _, n30, s30, max30 = stats
        return [
            amount,
            math.log1p(amount),
            _ratio(amount, s7 / n7) if n7 else NAN,
            _ratio(amount, s30 / n30) if n30 else NAN,
            _ratio(amount, max30),
        ]

    def online_inputs(self, earlier: Sequence[FeatureFamily]) -> tuple[str, ...] | None:
        """Features of an earlier family the online engine may compute this one from (None: own state).

        A :class:`CardVelocity` with 7-day and 30-day windows qualifies: its mean is
        ``sum / count`` with the sum exact in 1/SCALE units and NaN for an empty window,
        the denominator :meth:`_values` computes, and its maximum is the same window's.
        """
        for family in earlier:
            if isinstance(family, CardVelocity):
                label = {width: name for name, width in family.windows.items()}
                if all(width in label for width in _WIDTHS):
                    week, month = (label[width] for width in _WIDTHS)
                    return (f"card_amount_mean_{week}", f"card_amount_mean_{month}", f"card_amount_max_{month}")
        return None

    @staticmethod
    def values_from(tx: Transaction, inputs: list[float]) -> list[float]:
        """Features from card_velocity's 7-day mean, 30-day mean and 30-day maximum (NaN when empty)."""
        amount = tx.amount
        mean7, mean30, max30 = inputs
        return [amount, math.log1p(amount), _ratio(amount, mean7), _ratio(amount, mean30), _ratio(amount, max30)]

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        return self._values(tx.amount, window_stats(state, tx.timestamp_ms, _WIDTHS, commit=False))

    def update_one(self, tx: Transaction, state: Any) -> None:
        window_stats(state, tx.timestamp_ms, _WIDTHS, commit=True)
        window_push(state, tx.timestamp_ms, tx.amount)

    def step_one(self, tx: Transaction, state: Any) -> list[float]:
        values = self._values(tx.amount, window_stats(state, tx.timestamp_ms, _WIDTHS, commit=True))
        window_push(state, tx.timestamp_ms, tx.amount)
        return values

    def expire(self, state: Any, now_ms: int) -> bool:
        return expire_windows(state, now_ms, _WIDTHS)

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        amount = ctx.amount
        counts, sums, maxes = batch_window_stats(ctx, _WIDTHS)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / counts, np.nan)
            denominators = np.column_stack([means[:, 0], means[:, 1], maxes[:, 1]])
            denominators[denominators == 0.0] = np.nan
            ratios = amount[:, None] / denominators
        return np.column_stack([amount, np.log1p(amount), ratios])
