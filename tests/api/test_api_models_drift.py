"""``GET /v1/models/{version}`` shows the stream's latest drift snapshot; migration 0002 adds its table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.keys import Role
from fraudlens.settings import StateSettings
from streaming.drift import DriftMonitor
from streaming.pipeline import decode_batch, score_decoded
from streaming.records import BatchOutputs, DriftSnapshot, SourceRecord
from streaming.replay import encode_transaction
from streaming.scoring import ModelScorer


def _snapshot(registry_dir: Path, records: list[dict[str, Any]]) -> DriftSnapshot:
    """Score the sample like the stream does, with a drift monitor that snapshots every batch."""
    from detection.registry import ModelRegistry
    from features.schema import Transaction

    registry = ModelRegistry(registry_dir)
    scorer = ModelScorer.load(registry.root / registry.champion_version(), StateSettings(), explain=False)
    scorer.drift = DriftMonitor(scorer.bundle.reference, scorer.bundle.feature_names, scorer.model_version,
                                window=10_000, every_batches=1, min_rows=1)
    sources = [SourceRecord("tx", 0, i, None, encode_transaction(Transaction.from_mapping(r)), 0)
               for i, r in enumerate(records)]
    outputs = score_decoded(decode_batch(sources, max_bytes=65536), scorer, received_at=time.time())
    assert outputs.drift is not None
    return outputs.drift


def test_the_model_card_shows_the_latest_drift_snapshot_or_null(
    desk: Any, registry_dir: Path, sample_records: list[dict[str, Any]]
) -> None:
    headers = desk.headers(Role.VALIDATOR)
    version = desk.client.get("/v1/models", headers=headers).json()[0]["version"]
    card = desk.client.get(f"/v1/models/{version}", headers=headers)
    assert card.status_code == 200 and card.json()["drift"] is None, "the stream never ran this model"

    first = _snapshot(registry_dir, sample_records[:200])
    latest = _snapshot(registry_dir, sample_records)
    assert latest.taken_at_ms > first.taken_at_ms
    desk.store.write(BatchOutputs(drift=latest))
    desk.store.write(BatchOutputs(drift=first))  # written later, taken earlier: not the latest
    other = DriftSnapshot(model_version="fl-other", taken_at_ms=latest.taken_at_ms + 1000, window_rows=1,
                          psi={"score": 9.0}, flags={"score": "major shift"})
    desk.store.write(BatchOutputs(drift=other))  # another version's snapshot is not this card's

    drift = desk.client.get(f"/v1/models/{version}", headers=headers).json()["drift"]
    assert drift["window_rows"] == len(sample_records) == latest.window_rows
    assert drift["psi"] == pytest.approx(latest.psi)
    assert drift["flags"] == latest.flags
    assert set(drift["psi"]) == {"score", *latest.psi} and len(drift["psi"]) == 11
    assert drift["taken_at"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(latest.taken_at_ms / 1000)))
    assert drift["instance"] == latest.instance


def test_migration_0002_adds_the_shadow_and_drift_tables_to_a_0001_database(tmp_path: Path) -> None:
    from api.migrate import current, head, upgrade

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:  # a database created before 0002 existed has neither table
        conn.execute(sa.text("DROP TABLE shadow_scores"))
        conn.execute(sa.text("DROP TABLE drift_snapshots"))
    upgrade(engine)
    assert current(engine) == head()
    assert {"shadow_scores", "drift_snapshots"} <= set(sa.inspect(engine).get_table_names())
    keys = sa.inspect(engine).get_pk_constraint("shadow_scores")["constrained_columns"]
    assert keys == ["transaction_id", "model_version"]
    engine.dispose()
