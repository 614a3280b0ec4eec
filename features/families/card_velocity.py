"""``card_velocity``: how often and how much a card spent in trailing windows.

For each window W in 1h, 24h, 7d, 30d, over the card's *prior* transactions with
``t - ts_prev < W`` (ms): ``card_tx_count_W``, ``card_amount_sum_W``,
``card_amount_mean_W`` and ``card_amount_max_W`` (mean and max NaN when the count
is 0). Prior means earlier in processing order, so a transaction at the same
millisecond that was processed before counts; the event itself never does.

>>> from features.schema import Transaction
>>> fam = CardVelocity()
>>> state = fam.new_state()
>>> for minute in (0, 30, 60):
...     tx = Transaction("t", minute * 60_000, "c1", "m1", 10.0)
...     print(fam.step_one(tx, state)[0])   # card_tx_count_1h
0.0
1.0
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.base import MS_PER_DAY, MS_PER_HOUR
from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.families._windows import (
    batch_window_stats,
    expire_windows,
    new_windows,
    window_push,
    window_stats,
    window_step,
)
from features.schema import Transaction

WINDOWS: dict[str, int] = {
    "1h": MS_PER_HOUR,
    "24h": 24 * MS_PER_HOUR,
    "7d": 7 * MS_PER_DAY,
    "30d": 30 * MS_PER_DAY,
}


class CardVelocity(Family):
    name = "card_velocity"
    entity = "card"

    def __init__(self, windows: dict[str, int] | None = None) -> None:
        chosen = dict(sorted((windows or WINDOWS).items(), key=lambda item: item[1]))  # widest last
        self.windows = chosen
        self.widths = tuple(chosen.values())
        self.horizon_ms = self.widths[-1]
        self._names = tuple(
            f"card_{stat}_{label}"
            for label in chosen
            for stat in ("tx_count", "amount_sum", "amount_mean", "amount_max")
        )

    def new_state(self) -> dict[str, Any]:
        return new_windows(len(self.widths))

    @staticmethod
    def _values(stats: list[Any]) -> list[float]:
        out: list[float] = []
        for w in range(0, len(stats), 3):
            count, total, largest = stats[w], stats[w + 1], stats[w + 2]
            out += (float(count), total, total / count if count else NAN, largest)
        return out

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        return self._values(window_stats(state, tx.timestamp_ms, self.widths, commit=False))

    def update_one(self, tx: Transaction, state: Any) -> None:
        window_stats(state, tx.timestamp_ms, self.widths, commit=True)
        window_push(state, tx.timestamp_ms, tx.amount)

    def step_one(self, tx: Transaction, state: Any) -> list[float]:
        # Fused: scan, values and push in one pass (the parity suite checks it against values_one + update_one).
        return window_step(state, tx.timestamp_ms, tx.amount, self.widths)

    def expire(self, state: Any, now_ms: int) -> bool:
        return expire_windows(state, now_ms, self.widths)

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        counts, sums, maxes = batch_window_stats(ctx, self.widths)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / counts, np.nan)
        out = np.empty((ctx.n, 4 * len(self.widths)))
        out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = counts, sums, means, maxes
        return out
