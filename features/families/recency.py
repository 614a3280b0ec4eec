"""``recency``: ``seconds_since_prev_tx``, the gap to the card's previous transaction.

NaN for the card's first transaction *and* when the previous one is at least
``horizon_ms`` old (default 90 days, the state TTL). Why the horizon: online, a card
idle past the TTL has been evicted from the store and looks brand new; forgetting
the same history in batch keeps training and serving identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.base import MS_PER_DAY
from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.schema import Transaction


class Recency(Family):
    name = "recency"
    entity = "card"
    _names = ("seconds_since_prev_tx",)

    def __init__(self, horizon_ms: int = 90 * MS_PER_DAY) -> None:
        self.horizon_ms = horizon_ms

    def new_state(self) -> dict[str, Any]:
        return {}

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        prev = state.get("p")
        if prev is None or tx.timestamp_ms - prev >= self.horizon_ms:
            return [NAN]
        return [(tx.timestamp_ms - prev) / 1000]

    def update_one(self, tx: Transaction, state: Any) -> None:
        state["p"] = tx.timestamp_ms

    def step_one(self, tx: Transaction, state: Any) -> list[float]:
        # Fused values_one + update_one (one call per event on the stream's hot path).
        t = tx.timestamp_ms
        prev = state.get("p")
        state["p"] = t
        return [NAN] if prev is None or t - prev >= self.horizon_ms else [(t - prev) / 1000]

    def expire(self, state: Any, now_ms: int) -> bool:
        if "p" in state and now_ms - state["p"] >= self.horizon_ms:
            del state["p"]
        return not state

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        groups = ctx.groups("card_id")
        ts = ctx.ts[groups.perm]
        gap = np.full(ctx.n, np.nan)
        if ctx.n > 1:
            delta = ts[1:] - ts[:-1]
            keep = ~groups.starts[1:] & (delta < self.horizon_ms)
            gap[1:] = np.where(keep, delta / 1000, np.nan)
        out = np.empty(ctx.n)
        out[groups.perm] = gap
        return out[:, None]
