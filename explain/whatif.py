"""What-if facts: what the model itself says when one thing about the transaction differs.

Each :class:`WhatIf` is found by re-scoring modified feature vectors with the model
and states only what the model returned for the exact values it was given, e.g.
"at 640.00 EUR instead of 2,450.00 EUR the score would be 0.41 (threshold 0.62)".
It is a fact about the model, never advice.

Amount changes move every amount-derived feature together (the ratios to the card's
averages and largest amount scale with the amount; the card's history does not
change, since it is computed from earlier transactions only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from explain.formatting import money, score_pair
from explain.reasons import ReasonCode

ScoreFn = Callable[[np.ndarray], Any]

AMOUNT_FEATURES = frozenset({"amount", "amount_log1p", "amount_to_mean_7d", "amount_to_mean_30d", "amount_to_max_30d"})
_RATIO_DENOMINATORS = {
    "amount_to_mean_7d": "card_amount_mean_7d",
    "amount_to_mean_30d": "card_amount_mean_30d",
    "amount_to_max_30d": "card_amount_max_30d",
}
_FLAG_WORDING = {
    "is_new_merchant": "had the merchant been one this card used before",
    "is_new_device": "had the device been one this card used before",
    "is_new_country": "had the country been one this card used before",
}
_GRID = 48


class WhatIf(BaseModel):
    """One counterfactual answered by the model."""

    model_config = ConfigDict(frozen=True)

    feature: str
    original_value: float
    new_value: float
    new_score: float
    under_threshold: bool
    text: str


def with_amount(row: np.ndarray, names: Sequence[str], amounts: np.ndarray) -> np.ndarray:
    """Copies of one feature row with the amount replaced and its derived features recomputed."""
    index = {name: i for i, name in enumerate(names)}
    rows = np.repeat(np.asarray(row, dtype=np.float64)[None, :], len(amounts), axis=0)
    if "amount" in index:
        rows[:, index["amount"]] = amounts
    if "amount_log1p" in index:
        rows[:, index["amount_log1p"]] = np.log1p(amounts)
    old = float(row[index["amount"]]) if "amount" in index else math.nan
    for name, denominator in _RATIO_DENOMINATORS.items():
        if name not in index or math.isnan(float(row[index[name]])):
            continue
        base = float(row[index[denominator]]) if denominator in index else math.nan
        if not math.isnan(base) and base > 0:
            rows[:, index[name]] = amounts / base
        elif old > 0:
            rows[:, index[name]] = float(row[index[name]]) * amounts / old
    return rows


def what_ifs(
    row: np.ndarray,
    names: Sequence[str],
    reasons: Sequence[ReasonCode],
    score_fn: ScoreFn,
    threshold: float,
    *,
    currency: str = "EUR",
) -> list[WhatIf]:
    """Counterfactuals for the reasons that raise risk: a lower amount, a known merchant/device/country.

    ``row`` holds the transaction's features in the model's order, ``names`` that order;
    ``score_fn`` is the bundle's calibrated ``score`` on a float (n, f) array in that order.
    """
    row = np.asarray(row, dtype=np.float64)
    return what_ifs_many(row[None, :], names, [reasons], score_fn, threshold, currencies=[currency])[0]


def what_ifs_many(
    rows: np.ndarray,
    names: Sequence[str],
    reasons_per_row: Sequence[Sequence[ReasonCode]],
    score_fn: ScoreFn,
    threshold: float,
    *,
    currencies: Sequence[str],
) -> list[list[WhatIf]]:
    """:func:`what_ifs` of every row of ``rows`` (n, f), with at most two calls of ``score_fn`` in all.

    The model's fixed cost per call dominates on the alert hot path, so the first call scores
    every row's coarse amount grid and flag flips together and the second every row's fine
    amount grid. A row's score does not depend on the other rows of a call, so each row gets
    exactly the what-ifs that :func:`what_ifs` finds for it alone.
    """
    rows = np.asarray(rows, dtype=np.float64)
    index = {name: i for i, name in enumerate(names)}
    plans = [_plan(row, index, reasons) for row, reasons in zip(rows, reasons_per_row, strict=True)]
    first = _score_blocks(score_fn, [
        block for row, plan in zip(rows, plans, strict=True)
        for block in (with_amount(row, names, plan.grid), _flipped(row, index, plan.flips))
    ])
    coarse_scores, flip_scores = first[0::2], first[1::2]
    fine = [_fine_grid(plan.grid, scores, threshold) for plan, scores in zip(plans, coarse_scores, strict=True)]
    fine_scores = _score_blocks(score_fn, [
        with_amount(row, names, amounts) for row, amounts in zip(rows, fine, strict=True)
    ])
    return [
        _row_what_ifs(plan, _Tried(plan.grid, coarse, amounts, fine_found), flipped, threshold, currency)
        for plan, coarse, amounts, fine_found, flipped, currency
        in zip(plans, coarse_scores, fine, fine_scores, flip_scores, currencies, strict=True)
    ]


@dataclass(frozen=True)
class _Plan:
    """What one row asks of the model: amounts to try below its own, and flags to try at 0."""

    amount: float | None  # None when no amount feature raised risk (or the amount is not positive)
    grid: np.ndarray  # the coarse amounts tried; empty without an amount what-if
    flips: tuple[str, ...]


@dataclass(frozen=True)
class _Tried:
    """The amounts one row was scored at and their scores: coarse, then fine (empty when no refinement was needed)."""

    grid: np.ndarray
    scores: np.ndarray
    fine: np.ndarray
    fine_scores: np.ndarray


def _plan(row: np.ndarray, index: Mapping[str, int], reasons: Sequence[ReasonCode]) -> _Plan:
    raising = {r.feature for r in reasons if r.direction == "raises"}
    amount = None
    if raising & AMOUNT_FEATURES and "amount" in index and row[index["amount"]] > 0:
        amount = float(row[index["amount"]])
    flips = tuple(name for name in _FLAG_WORDING if name in raising and name in index and row[index[name]] == 1.0)
    return _Plan(amount=amount, grid=np.empty(0) if amount is None else _coarse_grid(amount), flips=flips)


def _coarse_grid(amount: float) -> np.ndarray:
    # Geometric, down to 0.1% of the amount, in whole cents.
    return np.unique(np.round(amount * np.geomspace(1e-3, 1.0, _GRID), 2))


def _fine_grid(grid: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Whole-cent amounts between the largest coarse amount under the threshold and the next one (else empty)."""
    under = np.flatnonzero(scores < threshold)
    if len(under) == 0 or under.max() + 1 == len(grid):
        return np.empty(0)  # never under the threshold, or already under at the largest coarse amount
    best = int(under.max())
    return np.unique(np.floor(np.linspace(grid[best], grid[best + 1], _GRID) * 100) / 100)


def _flipped(row: np.ndarray, index: Mapping[str, int], flips: Sequence[str]) -> np.ndarray:
    """One copy of ``row`` per flag in ``flips``, with that flag set to 0."""
    rows = np.repeat(row[None, :], len(flips), axis=0)
    for i, name in enumerate(flips):
        rows[i, index[name]] = 0.0
    return rows


def _score_blocks(score_fn: ScoreFn, blocks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scores of each block of rows, from a single model call over all of them (no call when there are no rows)."""
    sizes = [len(block) for block in blocks]
    if not sum(sizes):
        return [np.empty(0) for _ in blocks]
    scores = np.asarray(score_fn(np.concatenate(blocks)), dtype=np.float64).reshape(-1)
    return np.split(scores, np.cumsum(sizes)[:-1])


def _row_what_ifs(plan: _Plan, amounts: _Tried, flip_scores: np.ndarray, threshold: float,
                  currency: str) -> list[WhatIf]:
    out: list[WhatIf] = []
    if plan.amount is not None:
        found = _amount_what_if(plan.amount, amounts, threshold, currency)
        if found is not None:
            out.append(found)
    out += [_flag_what_if(name, float(new), threshold) for name, new in zip(plan.flips, flip_scores, strict=True)]
    return out


def _amount_what_if(amount: float, tried: _Tried, threshold: float, currency: str) -> WhatIf | None:
    under = np.flatnonzero(tried.scores < threshold)
    if len(under) == 0:
        lowest = float(tried.grid[0])
        new_text, thr_text = score_pair(float(tried.scores[0]), threshold)
        return WhatIf(
            feature="amount", original_value=amount, new_value=lowest, new_score=float(tried.scores[0]),
            under_threshold=False,
            text=(f"even at {money(lowest, currency)} instead of {money(amount, currency)} the score would be "
                  f"{new_text}, still at or above the threshold {thr_text}"),
        )
    if len(tried.fine):
        ok = np.flatnonzero(tried.fine_scores < threshold)
        new_amount, new_score = float(tried.fine[ok.max()]), float(tried.fine_scores[ok.max()])
    else:
        best = int(under.max())
        new_amount, new_score = float(tried.grid[best]), float(tried.scores[best])
    if new_amount >= amount:
        return None  # already under the threshold at this amount: nothing to say
    new_text, thr_text = score_pair(new_score, threshold)
    return WhatIf(
        feature="amount", original_value=amount, new_value=new_amount, new_score=new_score, under_threshold=True,
        text=(f"at {money(new_amount, currency)} instead of {money(amount, currency)} the score would be "
              f"{new_text}, under the threshold {thr_text}"),
    )


def _flag_what_if(name: str, new: float, threshold: float) -> WhatIf:
    under = bool(new < threshold)
    relation = "under" if under else "still at or above"
    new_text, thr_text = score_pair(new, threshold)
    return WhatIf(
        feature=name, original_value=1.0, new_value=0.0, new_score=new, under_threshold=under,
        text=f"{_FLAG_WORDING[name]}, the score would be {new_text}, {relation} the threshold {thr_text}",
    )
