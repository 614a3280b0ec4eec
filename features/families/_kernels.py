"""Numba kernels for the batch executions that need a per-entity sweep.

Each kernel walks arrays already grouped by entity (see
:class:`features.families._context.Groups`) and mirrors the online code of the same
family operation for operation; comments name the online twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def window_stats(starts, ts, amounts, amount_units, widths, scale):
    """Twin of ``_windows.window_stats`` + ``window_push`` over grouped arrays.

    ``amount_units`` are the amounts in exact integer 1/scale units (``np.rint``).
    Returns counts, sums and maxima, each (n, len(widths)); widths ascend.
    """
    n = ts.shape[0]
    k = widths.shape[0]
    counts = np.empty((n, k))
    sums = np.empty((n, k))
    maxes = np.empty((n, k))
    heads = np.zeros(k, np.int64)
    acc = np.zeros(k, np.int64)
    stack = np.empty(n, np.int64)  # an entity's stack lives in its own slice of this buffer
    bottom = 0
    top = 0
    for i in range(n):
        if starts[i]:
            heads[:] = i
            acc[:] = 0
            bottom = i
            top = i
        t = ts[i]
        for w in range(k):
            head = heads[w]
            total = acc[w]
            cut = t - widths[w]
            while head < i and ts[head] <= cut:
                total -= amount_units[head]
                head += 1
            heads[w] = head
            acc[w] = total
            counts[i, w] = i - head
            sums[i, w] = total / scale
            lo = bottom
            hi = top
            while lo < hi:
                mid = (lo + hi) >> 1
                if stack[mid] < head:
                    lo = mid + 1
                else:
                    hi = mid
            maxes[i, w] = amounts[stack[lo]] if lo < top else np.nan
        for w in range(k):
            acc[w] += amount_units[i]
        while top > bottom and amounts[stack[top - 1]] <= amounts[i]:
            top -= 1
        stack[top] = i
        top += 1
        oldest = heads[k - 1]
        while bottom < top and stack[bottom] < oldest:
            bottom += 1
    return counts, sums, maxes


@njit(cache=True, nogil=True)
def label_window_counts(q_code, q_ts, l_first, l_known, l_fraud_cum, widths):
    """Labels (and frauds) of the query's entity with ``known_at`` in ``(t - width, t]``.

    Labels are sorted by (entity code, known_at); entity ``c`` owns
    ``l_known[l_first[c]:l_first[c + 1]]``. ``l_fraud_cum[j]`` counts frauds before
    label ``j``. Twin of the ``bisect_right`` calls in ``merchant_risk``.
    """
    n = q_ts.shape[0]
    k = widths.shape[0]
    labels = np.zeros((n, k))
    frauds = np.zeros((n, k))
    for i in range(n):
        c = q_code[i]
        if c < 0:
            continue
        lo0 = l_first[c]
        hi0 = l_first[c + 1]
        t = q_ts[i]
        upper = _bisect_right(l_known, lo0, hi0, t)
        for w in range(k):
            lower = _bisect_right(l_known, lo0, upper, t - widths[w])
            labels[i, w] = upper - lower
            frauds[i, w] = l_fraud_cum[upper] - l_fraud_cum[lower]
    return labels, frauds


@njit(cache=True, nogil=True, inline="always")
def _bisect_right(values, lo, hi, x):
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
