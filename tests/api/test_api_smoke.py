"""The happy path end to end on SQLite: score, explain, store, list, read, decide, assign."""

from __future__ import annotations

from typing import Any

from api.keys import Role


def test_score_one_and_a_batch(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    one = desk.client.post("/v1/score", json=sample_records[0], headers=desk.headers(Role.SCORER))
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["transaction_id"] == sample_records[0]["transaction_id"]
    assert 0.0 <= body["score"] <= 1.0
    assert body["decision"] in ("alert", "pass")
    assert body["reasons"] and body["card"] is None

    batch = desk.client.post("/v1/score?explain=true", json=sample_records[1:6], headers=desk.headers(Role.SCORER))
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["transaction_id"] for r in results] == [r["transaction_id"] for r in sample_records[1:6]]
    card = results[0]["card"]
    assert card["schema_version"] == "1.0"
    assert card["narrative"]["status"] == "template"
    assert card["transaction"]["card"].startswith("****")
