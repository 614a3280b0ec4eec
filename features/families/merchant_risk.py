"""``merchant_risk``: the merchant's fraud rate among labels already known.

A label event is made from every row whose ``is_fraud`` is set. It becomes known at
``label_timestamp`` when present, else at ``timestamp + label_delay``, and never
earlier than 1 ms after its own transaction: a label cannot be known before the
payment happened, and this keeps a transaction's own label out of its features
even when a file carries ``label_timestamp <= timestamp``.

For a transaction at ``t`` a label counts when ``known_at`` lies in ``(t - W, t]``:
``merchant_fraud_rate_30d`` / ``_90d`` (frauds / labels, NaN with no labels),
``merchant_known_labels_30d`` and ``merchant_known_frauds_30d``.

Merchant state is the one state fed from every partition of the stream (cards are
the partition key), so expiry keeps 30 days of slack for transactions that arrive out
of event-time order; without it two runs over the same data could differ, and the
stream's features would differ from training's.

Online, labels arrive through ``learn_label``; the engine must learn every label
with ``known_at <= t`` before it transforms a transaction at ``t`` (labels learnt
early, with ``known_at > t``, are ignored until their time comes). The state keeps
the ``known_at`` of each label of the last 90 days — two sorted int lists, all
labels and frauds only — so its size grows with the merchant's labelled volume.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

import numpy as np

from features.base import MS_PER_DAY, LabelEvent
from features.families import _kernels
from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.families._labels import LabelArrays, label_arrays
from features.schema import Transaction

_WIDTHS = (30 * MS_PER_DAY, 90 * MS_PER_DAY)
#: How far back in event time a merchant's transactions may arrive late (across partitions).
#: Partitions advance a fetch at a time, and a consumer catching up after an outage reads
#: days of backlog per fetch: the demo's replay showed partitions 5 days apart. 30 days keeps
#: labels for 120 instead of 90 days and makes such skew harmless.
OUT_OF_ORDER_MS = 30 * MS_PER_DAY


class MerchantRisk(Family):
    name = "merchant_risk"
    entity = "merchant"
    uses_labels = True
    horizon_ms = _WIDTHS[-1]
    #: Labels are forgotten this long after they leave the widest window (see :meth:`expire`).
    expiry_slack_ms = OUT_OF_ORDER_MS
    _names = (
        "merchant_fraud_rate_30d",
        "merchant_fraud_rate_90d",
        "merchant_known_labels_30d",
        "merchant_known_frauds_30d",
    )

    def __init__(self, label_delay_ms: int = 7 * MS_PER_DAY) -> None:
        self.label_delay_ms = label_delay_ms

    def new_state(self) -> dict[str, Any]:
        return {"k": [], "f": []}

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        known, frauds, t = state["k"], state["f"], tx.timestamp_ms
        k_hi, f_hi = bisect_right(known, t), bisect_right(frauds, t)
        counts = []
        for width in _WIDTHS:
            cut = t - width
            counts.append(
                (
                    k_hi - bisect_right(known, cut, 0, k_hi),
                    f_hi - bisect_right(frauds, cut, 0, f_hi),
                )
            )
        (n30, f30), (n90, f90) = counts
        return [f30 / n30 if n30 else NAN, f90 / n90 if n90 else NAN, float(n30), float(f30)]

    def update_one(self, tx: Transaction, state: Any) -> None:
        self.expire(state, tx.timestamp_ms)

    def learn_label(self, label: LabelEvent, state: Any) -> None:
        for key, wanted in (("k", True), ("f", bool(label.is_fraud))):
            if wanted:
                values = state[key]
                if not values or values[-1] <= label.known_at_ms:
                    values.append(label.known_at_ms)  # the usual case: labels arrive in time order
                else:
                    insort(values, label.known_at_ms)
        # No expiry here: a label learnt early must not push out labels still valid now.

    def expire(self, state: Any, now_ms: int) -> bool:
        # A merchant's transactions come from every partition of the stream, so they do not
        # arrive in time order: a transaction a few seconds older than ``now_ms`` may still come.
        # Labels are kept OUT_OF_ORDER_MS past the widest window so that it sees exactly what an
        # in-order run would (values_one reads ranges, so a kept label never changes a value).
        cut = now_ms - self.horizon_ms - OUT_OF_ORDER_MS
        for key in ("k", "f"):
            values = state[key]
            if values and values[0] <= cut:
                del values[: bisect_right(values, cut)]
        return not state["k"]

    def label_events(self, ctx: BatchContext) -> LabelArrays:
        return label_arrays(ctx, self.label_delay_ms)

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        merchant = ctx.groups("merchant_id")
        labels = self.label_events(ctx)
        l_code = merchant.codes[labels.position]
        order = np.lexsort((labels.known_at_ms, l_code))
        l_code, known, fraud = l_code[order], labels.known_at_ms[order], labels.is_fraud[order]
        first = np.searchsorted(l_code, np.arange(merchant.n_groups + 1), side="left")
        fraud_cum = np.concatenate([[0], np.cumsum(fraud, dtype=np.int64)])
        n, f = _kernels.label_window_counts(
            merchant.codes, ctx.ts, first, known, fraud_cum, np.asarray(_WIDTHS, dtype=np.int64)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(n > 0, f / n, np.nan)
        return np.column_stack([rates[:, 0], rates[:, 1], n[:, 0], f[:, 0]])
