"""Bad input is a 422 problem+json that names the field; never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from api.keys import Role


@pytest.fixture(scope="module")
def desk(shared_desk: Any) -> Any:
    return shared_desk


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "lots"}, "amount"),
    ({"amount": -5}, "amount"),
    ({"amount": 1e300}, "amount"),
    ({"timestamp": "yesterday-ish"}, "timestamp"),
    ({"card_id": ""}, "card_id"),
    ({"latitude": 123.0}, "latitude"),
    ({"unexpected": 1}, "unexpected"),
])
def test_bad_transaction_fields_are_named(desk: Any, record_factory: Any, change: dict[str, Any], field: str) -> None:
    record = record_factory(**change)
    body = _problem(desk.client.post("/v1/score", json=record, headers=desk.headers(Role.SCORER)), 422)
    assert any(f == field or f.endswith(f".{field}") for f in _fields(body)), body


def test_a_missing_field_is_named(desk: Any, record_factory: Any) -> None:
    record = record_factory()
    del record["merchant_id"]
    body = _problem(desk.client.post("/v1/score", json=record, headers=desk.headers(Role.SCORER)), 422)
    assert "merchant_id" in _fields(body)


def test_a_bad_row_in_a_batch_is_named_with_its_index(desk: Any, record_factory: Any) -> None:
    batch = [record_factory(), record_factory(amount="x")]
    body = _problem(desk.client.post("/v1/score", json=batch, headers=desk.headers(Role.SCORER)), 422)
    assert any(f.startswith("[1]") and f.endswith("amount") for f in _fields(body)), body


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b"42", b'"text"', b"null"])
def test_malformed_bodies_are_422(desk: Any, payload: bytes) -> None:
    headers = {**desk.headers(Role.SCORER), "content-type": "application/json"}
    _problem(desk.client.post("/v1/score", content=payload, headers=headers), 422)


def test_duplicate_ids_in_a_batch_are_422(desk: Any, record_factory: Any) -> None:
    record = record_factory()
    body = _problem(desk.client.post("/v1/score", json=[record, record], headers=desk.headers(Role.SCORER)), 422)
    assert "transaction_id" in _fields(body)


@pytest.mark.parametrize(("query", "field"), [
    ("status=lost", "status"),
    ("min_score=2", "min_score"),
    ("sort=merchant", "sort"),
    ("limit=0", "limit"),
    ("from=not-a-time", "from"),
    ("cursor=%%%%", "cursor"),
    ("cursor=WyJzY29yZSIsImRlc2MiLDAuNSwieCJd", "cursor"),  # a cursor of another sort order
])
def test_bad_queue_queries_name_the_parameter(desk: Any, query: str, field: str) -> None:
    body = _problem(desk.client.get(f"/v1/alerts?{query}", headers=desk.headers(Role.INVESTIGATOR)), 422)
    assert field in _fields(body), body


def test_bad_decisions_and_assignments(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    tid = desk.seed(sample_records[40:], 1)[0]["transaction_id"]
    inv = desk.headers(Role.INVESTIGATOR)
    body = _problem(desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": "maybe"}, headers=inv), 422)
    assert "label" in _fields(body)
    body = _problem(desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": "escalate", "note": "x" * 5000},
                                     headers=inv), 422)
    assert "note" in _fields(body)
    body = _problem(desk.client.post(f"/v1/alerts/{tid}/assign", json={"assignee": "<script>"}, headers=inv), 422)
    assert "assignee" in _fields(body)


def test_unknown_things_are_404(desk: Any) -> None:
    inv = desk.headers(Role.INVESTIGATOR)
    _problem(desk.client.get("/v1/alerts/no-such-tx", headers=inv), 404)
    _problem(desk.client.post("/v1/alerts/no-such-tx/decision", json={"label": "escalate"}, headers=inv), 404)
    _problem(desk.client.post("/v1/alerts/no-such-tx/assign", json={"assignee": "bob"}, headers=inv), 404)
    _problem(desk.client.get("/v1/models/..", headers=desk.headers(Role.VALIDATOR)), 404)
    _problem(desk.client.get("/v1/nothing-here"), 404)
