"""Investigator decisions as training labels: the feedback loop back into ``fraudlens train``.

The latest ``confirmed_fraud`` / ``legitimate`` decision per transaction wins;
``escalate`` is not a label. Rows: ``transaction_id, is_fraud, label_timestamp``
(the decision time, so features that use labels respect when they were known).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from api.db import decisions_table

LABELS = {"confirmed_fraud": 1, "legitimate": 0}


def decision_labels(engine: Engine) -> list[dict[str, Any]]:
    query = (select(decisions_table.c.transaction_id, decisions_table.c.label, decisions_table.c.decided_at)
             .where(decisions_table.c.label.in_(list(LABELS))).order_by(decisions_table.c.id))
    latest: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for transaction_id, label, decided_at in conn.execute(query):
            stamp = decided_at.isoformat() if decided_at.tzinfo else decided_at.isoformat() + "+00:00"
            latest[transaction_id] = {"transaction_id": transaction_id, "is_fraud": LABELS[label],
                                      "label_timestamp": stamp}
    return sorted(latest.values(), key=lambda row: row["transaction_id"])


def export_labels(engine: Engine, path: Path) -> int:
    """Write the labels as CSV (``.csv``) or Parquet (``.parquet``); returns the row count."""
    rows = decision_labels(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(rows, columns=["transaction_id", "is_fraud", "label_timestamp"]).to_parquet(path, index=False)
        return len(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["transaction_id", "is_fraud", "label_timestamp"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
