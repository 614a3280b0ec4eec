"""POST /v1/score refuses a transaction much older than its card's latest one: a 422 that names the
item and the reason, and the card's state is left as if it had never been sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.keys import Role

LATEST = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
CARD = "4999000011112222"


def at(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def payment(record_factory: Any, tx_id: str, when: datetime, amount: float = 42.0) -> dict[str, Any]:
    return record_factory(transaction_id=tx_id, card_id=CARD, timestamp=at(when), amount=amount)


def history(record_factory: Any) -> list[dict[str, Any]]:
    return [payment(record_factory, f"hist-{i}", LATEST - timedelta(hours=6 * (5 - i)), 20.0 + i) for i in range(6)]


def post(desk: Any, body: Any) -> Any:
    return desk.client.post("/v1/score", json=body, headers=desk.headers(Role.SCORER))


def test_a_late_transaction_is_a_422_and_leaves_the_card_untouched(make_desk: Any, record_factory: Any) -> None:
    with_late, control = make_desk(), make_desk()
    past = history(record_factory)
    for desk in (with_late, control):
        assert post(desk, past).status_code == 200

    late = payment(record_factory, "late-1", LATEST - timedelta(days=3))
    response = post(with_late, late)
    assert response.status_code == 422, response.text
    body = response.json()
    reason = "older than the card's latest transaction by more than 1 day"
    assert body["title"] == "Transaction refused"
    assert body["detail"] == f"item 0 (transaction_id 'late-1'): {reason}"
    assert body["errors"] == [{"field": "[0]", "transaction_id": "late-1", "reason": reason}]

    # In a batch, the late item is named by its index and nothing of the batch is scored.
    normal = payment(record_factory, "normal-1", LATEST + timedelta(minutes=5), 55.0)
    batch = post(with_late, [normal, payment(record_factory, "late-2", LATEST - timedelta(days=2))])
    assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == "[1]"

    scored, expected = post(with_late, normal), post(control, normal)
    assert scored.status_code == expected.status_code == 200
    assert scored.json()["score"] == expected.json()["score"]
    assert scored.json()["reasons"] == expected.json()["reasons"]


def test_a_transaction_within_the_lateness_is_scored(make_desk: Any, record_factory: Any) -> None:
    desk = make_desk()
    assert post(desk, history(record_factory)).status_code == 200
    response = post(desk, payment(record_factory, "slightly-late", LATEST - timedelta(hours=20)))
    assert response.status_code == 200, response.text
