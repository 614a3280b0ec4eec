"""The score/alert store: idempotent by transaction id on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from streaming.records import AlertOut, BatchOutputs, ScoreOut
from streaming.settings import StoreSettings
from streaming.store import SqlAlertStore, StoreError, scores_table


def score(tx_id: str, value: float = 0.1) -> ScoreOut:
    return ScoreOut(tx_id, b"card", value, "alert" if value >= 0.9 else "pass", 0.9, "v1", 1_767_261_600_000, 0, 7, 1_767_261_600_000, 1.5)


def alert(tx_id: str) -> AlertOut:
    return AlertOut(tx_id, b"card", 0.95, "v1", {"transaction": {"transaction_id": tx_id, "card": "****1234"}, "narrative": None})


def test_writes_are_idempotent_by_transaction_id(store: SqlAlertStore) -> None:
    first = store.write(BatchOutputs(scores=[score("a"), score("b"), score("c", 0.95)], alerts=[alert("c")]))
    assert first.new_alerts == 1
    replay = store.write(BatchOutputs(scores=[score("b", 0.5), score("c", 0.95), score("d")], alerts=[alert("c")]))
    assert replay.new_alerts == 0
    assert store.count_scores() == 4 and store.count_alerts() == 1
    with store.engine.connect() as conn:
        kept = conn.execute(scores_table.select().where(scores_table.c.transaction_id == "b")).mappings().one()
    assert kept["score"] == 0.1 and kept["scored_at"] is not None  # the first write wins; a replay changes nothing


def test_scored_ids_finds_replayed_transactions(store: SqlAlertStore) -> None:
    store.write(BatchOutputs(scores=[score(f"t{i}") for i in range(1200)]))
    asked = [f"t{i}" for i in range(1100, 1300)]  # more than one parameter chunk
    assert store.scored_ids(asked) == {f"t{i}" for i in range(1100, 1200)}
    assert store.scored_ids([]) == set()


def test_alert_card_round_trips_and_can_be_updated(store: SqlAlertStore) -> None:
    store.write(BatchOutputs(scores=[score("c", 0.95)], alerts=[alert("c")]))
    row = store.get_alert("c")
    assert row is not None and row["status"] == "new" and row["card"]["transaction"]["card"] == "****1234"
    assert store.update_card("c", {**row["card"], "narrative": "because"})
    assert store.get_alert("c")["card"]["narrative"] == "because"  # type: ignore[index]
    assert not store.update_card("missing", {})
    assert [a["transaction_id"] for a in store.list_alerts(status="new")] == ["c"]


def test_setup_is_idempotent(sqlite_store_settings: StoreSettings) -> None:
    for _ in range(2):
        again = SqlAlertStore(sqlite_store_settings)
        again.setup()
        again.close()


def test_unsupported_url_fails_with_a_clear_message() -> None:
    with pytest.raises(StoreError, match="only sqlite"):
        SqlAlertStore(StoreSettings(url="mysql://x@y/z")).setup()
    with pytest.raises(StoreError, match="not a database URL"):
        SqlAlertStore(StoreSettings(url="not a url")).setup()
