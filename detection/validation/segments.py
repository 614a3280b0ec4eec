"""Performance by segment: channel, MCC group, amount band and card tenure.

A model can look good overall and fail one population (new cards, ATM withdrawals).
Each segment gets rows, frauds, average precision and, at the bundle's threshold,
recall, precision and alert rate.

**Flag rule**: a segment is flagged when it holds at least ``min_frauds`` labelled
frauds (default :data:`MIN_FRAUDS`: fewer frauds make AP too noisy to blame the
segment) and its average precision is below ``ap_ratio`` (default 0.8) times the
overall average precision of the window. AP is the right yardstick because it does
not depend on the segment's share of alerts; segments with too few frauds are listed,
never flagged.

Bands:

* MCC group: ISO 18245 ranges (travel, transport, utilities, retail, clothing, home &
  electronics, eating & digital, misc. retail, financial/cash, lodging & personal,
  business & leisure services, professional & organisations, government);
* amount band: < 10, 10-50, 50-200, 200-1000, >= 1000 in the transaction currency;
* card tenure: days since the card's first transaction *in the data* (the data's first
  day bounds it): < 7 d, 7-30 d, 30-90 d, >= 90 d.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from detection.metrics import average_precision, precision_recall_at_threshold
from detection.validation.window import EvaluatedWindow

MIN_FRAUDS = 20
AP_RATIO = 0.8
MISSING = "missing"
AMOUNT_BANDS: tuple[tuple[float, str], ...] = ((10, "< 10"), (50, "10-50"), (200, "50-200"), (1000, "200-1000"),
                                               (math.inf, ">= 1000"))
TENURE_BANDS: tuple[tuple[float, str], ...] = ((7, "< 7 d"), (30, "7-30 d"), (90, "30-90 d"), (math.inf, ">= 90 d"))
#: (first MCC, last MCC, group), ISO 18245 ranges.
MCC_GROUPS: tuple[tuple[int, int, str], ...] = (
    (3000, 3999, "travel (airlines, hotels, car rental)"),
    (4000, 4799, "transport"),
    (4800, 4999, "utilities & telecom"),
    (5000, 5599, "retail, grocery & fuel"),
    (5600, 5699, "clothing"),
    (5700, 5799, "home & electronics"),
    (5800, 5899, "eating & digital goods"),
    (5900, 5999, "misc. retail"),
    (6000, 6999, "financial & cash"),
    (7000, 7299, "lodging & personal services"),
    (7300, 7999, "business & leisure services"),
    (8000, 8999, "professional & organisations"),
    (9000, 9999, "government"),
)
DIMENSIONS: tuple[str, ...] = ("channel", "mcc_group", "amount_band", "card_tenure")


def mcc_group(mcc: Any) -> str:
    """ISO 18245 group of a merchant category code ("5411" -> retail, grocery & fuel)."""
    if not isinstance(mcc, str) or not mcc.isascii() or not mcc.isdigit():
        return MISSING
    code = int(mcc)
    return next((name for low, high, name in MCC_GROUPS if low <= code <= high), "other")


def _band(values: np.ndarray, bands: tuple[tuple[float, str], ...]) -> np.ndarray:
    uppers = np.array([upper for upper, _ in bands])
    names = np.array([name for _, name in bands] + [MISSING], dtype=object)
    idx = np.searchsorted(uppers, values, side="right")
    idx[~np.isfinite(values)] = len(bands)
    return names[idx]


def card_tenure_days(history: pd.DataFrame) -> np.ndarray:
    """Days since each row's card was first seen in ``history`` (time-ordered frame)."""
    first = history.groupby("card_id", sort=False)["timestamp"].transform("min")
    return ((history["timestamp"] - first) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)


def segment_labels(window: EvaluatedWindow) -> dict[str, pd.Series]:
    """The segment of every window row, per dimension."""
    scored = window.scored
    channel = scored["channel"].astype(object).where(scored["channel"].notna(), MISSING) if "channel" in scored \
        else pd.Series(MISSING, index=scored.index)
    mcc = scored["mcc"].map(mcc_group) if "mcc" in scored else pd.Series(MISSING, index=scored.index)
    amount = _band(scored["amount"].to_numpy(dtype=np.float64), AMOUNT_BANDS)
    tenure = _band(card_tenure_days(window.fm.frame)[window.rows], TENURE_BANDS)
    return {"channel": channel.astype(str), "mcc_group": mcc.astype(str),
            "amount_band": pd.Series(amount, index=scored.index, dtype=str),
            "card_tenure": pd.Series(tenure, index=scored.index, dtype=str)}


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def segment_rows(scored: pd.DataFrame, labels: pd.Series, threshold: float) -> list[dict[str, Any]]:
    """Metrics of each segment of one dimension (largest first)."""
    out = []
    for name, part in scored.groupby(labels.to_numpy(), sort=True):
        known = part.loc[part["is_fraud"].notna()]
        y = known["is_fraud"].to_numpy(dtype=np.float64)
        s = known["score"].to_numpy(dtype=np.float64)
        precision, recall = precision_recall_at_threshold(y, s, threshold) if len(y) else (math.nan, math.nan)
        out.append({
            "segment": str(name),
            "rows": len(part),
            "frauds": int(y.sum()),
            "fraud_rate": float(y.mean()) if len(y) else None,
            "average_precision": _clean(average_precision(y, s)) if len(y) else None,
            "recall_at_threshold": _clean(recall),
            "precision_at_threshold": _clean(precision),
            "alert_rate": float((part["score"].to_numpy(dtype=np.float64) >= threshold).mean()),
        })
    return sorted(out, key=lambda r: (-r["rows"], r["segment"]))


def segment_section(scored: pd.DataFrame, labels: dict[str, pd.Series], *, overall_ap: float, threshold: float,
                    min_frauds: int = MIN_FRAUDS, ap_ratio: float = AP_RATIO) -> dict[str, Any]:
    """The report's ``segments`` block: a table per dimension and the flagged segments."""
    dimensions: dict[str, list[dict[str, Any]]] = {}
    flagged = []
    limit = ap_ratio * overall_ap
    for dim, lab in labels.items():
        rows = segment_rows(scored, lab, threshold)
        for row in rows:
            ap = row["average_precision"]
            row["flagged"] = bool(row["frauds"] >= min_frauds and ap is not None and ap < limit)
            row["enough_frauds"] = row["frauds"] >= min_frauds
            if row["flagged"]:
                flagged.append({"dimension": dim, **row})
        dimensions[dim] = rows
    return {
        "rule": f"flag a segment with >= {min_frauds} frauds whose average precision is below "
                f"{ap_ratio:g} x the overall {overall_ap:.3f} (= {limit:.3f})",
        "min_frauds": int(min_frauds),
        "ap_ratio": float(ap_ratio),
        "overall_average_precision": float(overall_ap),
        "threshold": float(threshold),
        "dimensions": dimensions,
        "flagged": flagged,
    }


def recall_by_type(scored: pd.DataFrame, column: str, threshold: float) -> list[dict[str, Any]]:
    """Recall at the threshold per fraud type (e.g. the simulator's ``fraud_scenario``), most frauds first."""
    frauds = scored.loc[(scored["is_fraud"] == 1) & scored[column].notna() & (scored[column].astype(str) != "")]
    out = [{"type": str(name), "frauds": len(part),
            "recall_at_threshold": float((part["score"].to_numpy(dtype=np.float64) >= threshold).mean()),
            "fraud_amount": float(part["amount"].sum())}
           for name, part in frauds.groupby(frauds[column].astype(str), sort=True)]
    return sorted(out, key=lambda r: (-r["frauds"], r["type"]))
