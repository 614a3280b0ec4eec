"""Label events of a frame, vectorised: which fraud labels exist and when each became known.

A row with ``is_fraud`` set yields one label. It is known at ``label_timestamp``
when present, else at ``timestamp + label_delay``, and never before 1 ms after its
own transaction (a label cannot precede the payment; this also keeps a row's own
label out of its features when a file has ``label_timestamp <= timestamp``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.base import LabelEvent
from features.families._context import NAT_MS, BatchContext
from features.schema import Transaction


@dataclass(frozen=True)
class LabelArrays:
    """Label events in processing order of their transactions."""

    position: np.ndarray  # processing position of the labelled transaction
    known_at_ms: np.ndarray  # int64
    is_fraud: np.ndarray  # int8, 0 or 1


def label_arrays(ctx: BatchContext, label_delay_ms: int) -> LabelArrays:
    labels = ctx.floats("is_fraud")
    position = np.flatnonzero(~np.isnan(labels))
    ts = ctx.ts[position]
    known = ts + label_delay_ms
    given = ctx.times_ms("label_timestamp")
    if given is not None:
        given = given[position]
        known = np.where(given != NAT_MS, given, known)
    known = np.maximum(known, ts + 1)
    return LabelArrays(position, known.astype(np.int64), (labels[position] != 0).astype(np.int8))


def label_event(tx: Transaction, label_delay_ms: int) -> LabelEvent | None:
    """The one-record twin of :func:`label_arrays`: the label a labelled record carries, and when
    it became known (same rule); ``None`` when the record has no label."""
    if tx.is_fraud is None:
        return None
    ts = tx.timestamp_ms
    known = tx.label_timestamp_ms if tx.label_timestamp_ms is not None else ts + label_delay_ms
    return LabelEvent(tx.transaction_id, tx.card_id, tx.merchant_id, ts, max(known, ts + 1), int(tx.is_fraud != 0))
