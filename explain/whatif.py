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
from collections.abc import Callable, Sequence
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
    index = {name: i for i, name in enumerate(names)}
    raising = {r.feature for r in reasons if r.direction == "raises"}
    out: list[WhatIf] = []
    if raising & AMOUNT_FEATURES and "amount" in index and row[index["amount"]] > 0:
        found = _amount_what_if(row, names, float(row[index["amount"]]), score_fn, threshold, currency)
        if found is not None:
            out.append(found)
    flips = [name for name in _FLAG_WORDING if name in raising and name in index and row[index[name]] == 1.0]
    if flips:
        rows = np.repeat(row[None, :], len(flips), axis=0)
        for i, name in enumerate(flips):
            rows[i, index[name]] = 0.0
        scores = _scores(score_fn, rows)
        for name, new in zip(flips, scores, strict=True):
            under = bool(new < threshold)
            relation = "under" if under else "still at or above"
            new_text, thr_text = score_pair(float(new), threshold)
            out.append(WhatIf(
                feature=name, original_value=1.0, new_value=0.0, new_score=float(new), under_threshold=under,
                text=f"{_FLAG_WORDING[name]}, the score would be {new_text}, {relation} the threshold {thr_text}",
            ))
    return out


def _amount_what_if(row: np.ndarray, names: Sequence[str], amount: float, score_fn: ScoreFn, threshold: float,
                    currency: str) -> WhatIf | None:
    # Coarse geometric grid down to 0.1% of the amount, then a fine linear grid around the crossing.
    grid = np.unique(np.round(amount * np.geomspace(1e-3, 1.0, _GRID), 2))
    scores = _scores(score_fn, with_amount(row, names, grid))
    under = np.flatnonzero(scores < threshold)
    if len(under) == 0:
        lowest = float(grid[0])
        new_text, thr_text = score_pair(float(scores[0]), threshold)
        return WhatIf(
            feature="amount", original_value=amount, new_value=lowest, new_score=float(scores[0]), under_threshold=False,
            text=(f"even at {money(lowest, currency)} instead of {money(amount, currency)} the score would be "
                  f"{new_text}, still at or above the threshold {thr_text}"),
        )
    best = int(under.max())
    if best + 1 < len(grid):
        fine = np.unique(np.floor(np.linspace(grid[best], grid[best + 1], _GRID) * 100) / 100)
        fine_scores = _scores(score_fn, with_amount(row, names, fine))
        ok = np.flatnonzero(fine_scores < threshold)
        new_amount, new_score = float(fine[ok.max()]), float(fine_scores[ok.max()])
    else:
        new_amount, new_score = float(grid[best]), float(scores[best])
    if new_amount >= amount:
        return None  # already under the threshold at this amount: nothing to say
    new_text, thr_text = score_pair(new_score, threshold)
    return WhatIf(
        feature="amount", original_value=amount, new_value=new_amount, new_score=new_score, under_threshold=True,
        text=(f"at {money(new_amount, currency)} instead of {money(amount, currency)} the score would be "
              f"{new_text}, under the threshold {thr_text}"),
    )


def _scores(score_fn: ScoreFn, rows: np.ndarray) -> np.ndarray:
    return np.asarray(score_fn(rows), dtype=np.float64).reshape(-1)
