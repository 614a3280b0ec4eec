"""``channel_mcc``: the payment channel and merchant category as numbers. Stateless.

``channel_code``: card_present 0, ecommerce 1, atm 2, anything else (or missing)
NaN. ``mcc_code``: the merchant category code as a float when it is all ASCII
digits, else NaN (e.g. ``"54a1"``). The batch execution applies the same scalar
functions to the distinct values of each column, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.schema import KNOWN_CHANNELS, Transaction

CHANNEL_CODES: dict[str, float] = {name: float(code) for code, name in enumerate(KNOWN_CHANNELS)}


def channel_code(channel: Any) -> float:
    return CHANNEL_CODES.get(channel, NAN) if isinstance(channel, str) else NAN


def mcc_code(mcc: Any) -> float:
    return float(mcc) if isinstance(mcc, str) and mcc.isascii() and mcc.isdigit() else NAN


def _encode(ctx: BatchContext, column: str, encode: Callable[[Any], float]) -> np.ndarray:
    values = ctx.objects(column)
    if values is None:
        return np.full(ctx.n, np.nan)
    codes, uniques = pd.factorize(values)
    table = np.array([encode(value) for value in uniques] + [NAN], dtype=np.float64)
    return table[codes]  # code -1 (missing) picks the trailing NaN


class ChannelMcc(Family):
    name = "channel_mcc"
    entity = "none"
    _names = ("channel_code", "mcc_code")

    def values_one(self, tx: Transaction, state: object) -> list[float]:
        return [channel_code(tx.channel), mcc_code(tx.mcc)]

    def values_many(self, txs: Sequence[Transaction]) -> np.ndarray:
        """``values_one`` of every event at once: each distinct value is encoded once per micro-batch."""
        channels = [tx.channel for tx in txs]
        mccs = [tx.mcc for tx in txs]
        channel_of = {value: channel_code(value) for value in set(channels)}
        mcc_of = {value: mcc_code(value) for value in set(mccs)}
        out = np.empty((len(txs), 2))
        out[:, 0] = [channel_of[value] for value in channels]
        out[:, 1] = [mcc_of[value] for value in mccs]
        return out

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        return np.column_stack(
            [_encode(ctx, "channel", channel_code), _encode(ctx, "mcc", mcc_code)]
        )
