"""Data profile: what was validated on (rows, fraud rate, dates, missing fields, label delay).

Label delay matters twice: the features that use labels (merchant fraud rates) only
see a label once it is known, and an evaluation window that ends close to the data's
last day holds frauds that a bank would not have confirmed yet. The bundle's
configured delay (``feature_settings.label_delay_days``) is shown beside the delay
observed in the data when it has ``label_timestamp`` (the chargeback time, set for
frauds only in the simulator).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detection.validation.window import EvaluatedWindow
from features.schema import CANONICAL_FIELDS

_DAY = pd.Timedelta(days=1)


def _fraud_summary(labels: pd.Series) -> dict[str, Any]:
    known = labels.dropna()
    n_frauds = int(known.sum())
    return {"labelled_rows": int(known.size), "frauds": n_frauds,
            "fraud_rate": float(n_frauds / known.size) if known.size else None}


def missingness(frame: pd.DataFrame) -> dict[str, float]:
    """Share of rows missing each canonical field (1.0 when the column is absent)."""
    n = max(len(frame), 1)
    return {name: (float(frame[name].isna().sum() / n) if name in frame else 1.0) for name in CANONICAL_FIELDS}


def label_delay(frame: pd.DataFrame, configured_days: float) -> dict[str, Any]:
    """Configured delay and, for frauds with a ``label_timestamp``, the observed one in days."""
    out: dict[str, Any] = {"configured_days": float(configured_days), "observed": None}
    if "label_timestamp" not in frame or "is_fraud" not in frame:
        return out
    frauds = frame.loc[(frame["is_fraud"] == 1) & frame["label_timestamp"].notna()]
    if frauds.empty:
        return out
    delay = ((frauds["label_timestamp"] - frauds["timestamp"]) / _DAY).to_numpy(dtype=np.float64)
    out["observed"] = {
        "n_frauds_with_label_time": int(delay.size),
        "median_days": float(np.median(delay)),
        "p90_days": float(np.percentile(delay, 90)),
        "max_days": float(delay.max()),
        "share_later_than_configured": float(np.mean(delay > configured_days)),
    }
    return out


def profile_section(frame: pd.DataFrame, window: EvaluatedWindow, *, label_delay_days: float) -> dict[str, Any]:
    """The ``data`` block of the report (without path/sha256/columns, which the caller knows)."""
    scored = window.scored
    ts = frame["timestamp"]
    data_end = ts.max()
    # Frauds of the window whose confirmation came after the data ends: a bank scoring this
    # window on the data's last day would still count them as legitimate.
    late = None
    if "label_timestamp" in scored:
        frauds = scored.loc[scored["is_fraud"] == 1]
        late = int((frauds["label_timestamp"] > data_end).sum()) if len(frauds) else 0
    return {
        "rows": len(frame),
        **(_fraud_summary(frame["is_fraud"]) if "is_fraud" in frame else {}),
        "date_range": {"start": f"{ts.min():%Y-%m-%d}", "end": f"{data_end:%Y-%m-%d}"},
        "window_profile": {
            "rows": len(scored),
            "days_with_data": window.n_days,
            "first": f"{scored['timestamp'].min():%Y-%m-%d %H:%M}",
            "last": f"{scored['timestamp'].max():%Y-%m-%d %H:%M}",
            **_fraud_summary(scored["is_fraud"]),
            "frauds_confirmed_after_data_end": late,
            "history_rows_before_window": int(window.rows[0]) if window.rows.size else 0,
        },
        "missingness": missingness(frame),
        "window_missingness": missingness(scored),
        "label_delay": label_delay(frame, label_delay_days),
    }
