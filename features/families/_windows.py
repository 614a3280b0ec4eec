"""Trailing time windows over (time, amount) pairs of one entity: the online execution.

One state serves several nested windows (e.g. 1 h, 24 h, 7 d, 30 d) with O(1)
amortised work per event, and it is plain JSON (lists, ints, floats) so that the
Redis store can hold it without pickle::

    {"t": [ms, ...], "a": [amount, ...],   # events still inside the widest window
     "b": seq of t[0],                      # events are numbered 0, 1, 2, ... per entity
     "h": [first seq inside window w],      # one head per window, widest window last
     "s": [running sum per window, in 1e-4 units],
     "m": [seqs whose amount beats every later one]}   # suffix maxima, ascending seq

The maximum of any window is the amount of the first ``m`` entry at or after the
window's head (a binary search), so one stack serves all windows.

Sums are kept exactly, as integers of ``1/SCALE`` currency units (every ISO 4217
currency has at most 3 decimals): a running float sum would leave rounding residue
after expiries (a window of zero amounts summing to -4e-14, and a ratio to that
"mean" of 1e15). The batch twin, :func:`features.families._kernels.window_stats`,
does the same integer arithmetic and the same float conversions, so both
executions agree bit for bit rather than merely to a tolerance.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import numpy as np

from features.families import _kernels
from features.families._context import BatchContext

NAN = float("nan")

WindowState = dict[str, Any]

#: Amounts are summed in units of 1/SCALE (exact for up to 4 decimals): ``round(amount *
#: SCALE)``, which rounds half to even exactly like ``numpy.rint`` in the batch twin.
SCALE = 10_000


def new_windows(k: int) -> WindowState:
    return {"t": [], "a": [], "b": 0, "h": [0] * k, "s": [0] * k, "m": []}


def window_stats(state: WindowState, t: int, widths: tuple[int, ...], *, commit: bool) -> list[Any]:
    """Flat ``[count, sum, max, count, sum, max, ...]`` of the prior events with ``t - ts < width``.

    One triple per width. The sum is a float (exact units / SCALE), the max NaN for
    an empty window. ``commit=False`` leaves the state untouched (transform);
    ``commit=True`` also moves the heads and sums forward (update), with the
    identical arithmetic.
    """
    ts, amounts, base, stack = state["t"], state["a"], state["b"], state["m"]
    heads, sums = state["h"], state["s"]
    n = len(ts)
    end = base + n
    depth = len(stack)
    out: list[Any] = []
    for w, width in enumerate(widths):
        head, total = heads[w], sums[w]
        cut = t - width
        i = head - base
        if i < n and ts[i] <= cut:  # most events expire nothing: skip the loop set-up
            while i < n and ts[i] <= cut:
                total -= round(amounts[i] * SCALE)  # the hot loop: inlined
                i += 1
            head = i + base
            if commit:
                heads[w], sums[w] = head, total
        j = bisect_left(stack, head)
        out += (end - head, total / SCALE, amounts[stack[j] - base] if j < depth else NAN)
    return out


def window_push(state: WindowState, t: int, amount: float) -> None:
    """Append an event (after ``window_stats(..., commit=True)`` at the same ``t``) and forget what no window sees."""
    ts, amounts, base, stack, sums = state["t"], state["a"], state["b"], state["m"], state["s"]
    seq = base + len(ts)
    ts.append(t)
    amounts.append(amount)
    step = round(amount * SCALE)
    for w in range(len(sums)):
        sums[w] += step
    while stack and amounts[stack[-1] - base] <= amount:
        stack.pop()
    stack.append(seq)
    if state["h"][-1] != base:
        compact(state)


def window_step(state: WindowState, t: int, amount: float, widths: tuple[int, ...]) -> list[float]:
    """``window_stats(commit=True)`` then ``window_push`` in one pass: card_velocity's online step.

    Returns ``[count, sum, mean, max]`` per width (mean and max NaN for an empty window),
    with the arithmetic of the two functions it fuses, so the values are the same floats;
    called once per streamed transaction, it saves the intermediate list and a second loop.
    """
    ts, amounts, base, stack = state["t"], state["a"], state["b"], state["m"]
    heads, sums = state["h"], state["s"]
    n = len(ts)
    end = base + n
    step = round(amount * SCALE)
    out: list[float] = []
    for w, width in enumerate(widths):
        head, total = heads[w], sums[w]
        cut = t - width
        i = head - base
        if i < n and ts[i] <= cut:
            while i < n and ts[i] <= cut:
                total -= round(amounts[i] * SCALE)
                i += 1
            head = heads[w] = i + base
        sums[w] = total + step  # the pushed event joins every window
        count = end - head
        if count:
            j = bisect_left(stack, head)
            mean_sum = total / SCALE
            out += (float(count), mean_sum, mean_sum / count, amounts[stack[j] - base])
        else:
            out += (0.0, total / SCALE, NAN, NAN)
    ts.append(t)
    amounts.append(amount)
    while stack and amounts[stack[-1] - base] <= amount:
        stack.pop()
    stack.append(end)
    if heads[-1] != base:
        compact(state)
    return out


def compact(state: WindowState) -> None:
    """Drop events before the widest window's head (bounded state)."""
    oldest = state["h"][-1]
    drop = oldest - state["b"]
    if drop > 0:
        stack = state["m"]
        j = bisect_left(stack, oldest)
        if j:
            del stack[:j]
        del state["t"][:drop]
        del state["a"][:drop]
        state["b"] = oldest


def expire_windows(state: WindowState, now_ms: int, widths: tuple[int, ...]) -> bool:
    """Forget events outside every window at ``now_ms``; True when nothing is left."""
    window_stats(state, now_ms, widths, commit=True)
    compact(state)
    return not state["t"]


def batch_window_stats(
    ctx: BatchContext, widths: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch twin for a whole frame: counts, sums, maxima (n, len(widths)) in processing order."""
    groups = ctx.groups("card_id")
    amounts = ctx.amount[groups.perm]
    amount_units = np.rint(amounts * SCALE).astype(np.int64)
    grouped = _kernels.window_stats(
        groups.starts,
        ctx.ts[groups.perm],
        amounts,
        amount_units,
        np.asarray(widths, dtype=np.int64),
        SCALE,
    )
    counts, sums, maxes = (np.empty_like(values) for values in grouped)
    for out, values in zip((counts, sums, maxes), grouped, strict=True):
        out[groups.perm] = values
    return counts, sums, maxes
