"""NUL and other control characters in text inputs are a 422 naming the field on SQLite and PostgreSQL, never a 500.

PostgreSQL refuses a NUL in text (psycopg DataError): before the shared check these
inputs were 500s there. Every case runs on both stores (``any_desk``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.keys import Role
from api.text import TextError, clean_text

HOSTILE = ["a\x00b", "\x00", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85", "lone\ud800surrogate", "line\nbreak"]


@pytest.mark.parametrize("value", HOSTILE)
def test_clean_text_refuses_control_characters_in_one_line_text(value: str) -> None:
    with pytest.raises(TextError) as caught:
        clean_text(value, field="merchant_id")
    assert caught.value.field == "merchant_id" and "control character" in caught.value.reason


def test_notes_keep_line_breaks_and_tabs_only() -> None:
    assert clean_text("first\r\nsecond\tthird\n", field="note", multiline=True) == "first\nsecond\tthird\n"
    for value in ("a\x00b", "a\rb", "a\x0bb", "a\x1bb"):
        with pytest.raises(TextError):
            clean_text(value, field="note", multiline=True)


def _assert_names(response: Any, field: str, reason: str = "control character") -> None:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    body = response.json()
    assert any(e["field"] == field for e in body["errors"]), body
    assert reason in body["detail"]


#: (method, path, query, json body, field named) - every text input of the REST API.
API_CASES: list[tuple[str, str, dict[str, str] | None, Any, str]] = [
    ("GET", "/v1/alerts/a%00b", None, None, "transaction_id"),
    ("POST", "/v1/alerts/a%00b/decision", None, {"label": "escalate"}, "transaction_id"),
    ("POST", "/v1/alerts/a%00b/assign", None, {"assignee": "bob"}, "transaction_id"),
    ("GET", "/v1/alerts", {"merchant_id": "m\x00"}, None, "merchant_id"),
    ("GET", "/v1/alerts", {"assignee": "bob\x00"}, None, "assignee"),
    ("GET", "/v1/alerts", {"cursor": "\x00"}, None, "cursor"),
    ("GET", "/v1/audit", {"target": "t\x00"}, None, "target"),
    ("GET", "/v1/models/v%00", None, None, "version"),
    ("POST", "/v1/alerts/{tid}/decision", None, {"label": "escalate", "note": "n\x00te"}, "note"),
    ("POST", "/v1/alerts/{tid}/decision", None, {"label": "escalate", "note": "bell\x07"}, "note"),
    ("POST", "/v1/alerts/{tid}/assign", None, {"assignee": "b\x00b"}, "assignee"),
]


@pytest.mark.parametrize(("method", "path", "query", "body", "field"), API_CASES,
                         ids=[f"{m} {p} {f}" for m, p, _, _, f in API_CASES])
def test_control_characters_in_api_inputs_are_422_on_both_stores(
        any_desk: Any, sample_records: list[dict[str, Any]], method: str, path: str, query: dict[str, str] | None,
        body: Any, field: str) -> None:
    tid = any_desk.seed(sample_records, 1)[0]["transaction_id"]
    url = path.replace("{tid}", tid)
    response = any_desk.client.request(method, url, params=query, json=body, headers=any_desk.headers(Role.ADMIN))
    # An assignee in a body meets its pattern (letters, digits, . @ - _) before the text check.
    _assert_names(response, field, "pattern" if field == "assignee" and body else "control character")


def test_a_note_with_line_breaks_is_stored_on_both_stores(any_desk: Any, sample_records: list[dict[str, Any]]) -> None:
    tid = any_desk.seed(sample_records, 1)[0]["transaction_id"]
    response = any_desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": "escalate", "note": "a\r\nb\tc"},
                                    headers=any_desk.headers(Role.INVESTIGATOR))
    assert response.status_code == 201, response.text
    assert response.json()["note"] == "a\nb\tc"


def test_a_cursor_that_decodes_to_a_nul_is_422(any_desk: Any) -> None:
    import base64
    import json

    raw = json.dumps(["created_at", "desc", "2026-01-01T00:00:00+00:00", "a\x00b"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = any_desk.client.get("/v1/alerts", params={"cursor": cursor}, headers=any_desk.headers(Role.ADMIN))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"


def test_control_characters_in_page_inputs_are_422_on_both_stores(
        any_desk: Any, sample_records: list[dict[str, Any]]) -> None:
    tid = any_desk.seed(sample_records, 1)[0]["transaction_id"]
    client = any_desk.client
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"key": any_desk.keys[Role.INVESTIGATOR], "csrf": token},
                       follow_redirects=False).status_code == 303
    _assert_names(client.get("/ui/alerts", params={"merchant_id": "m\x00"}), "merchant_id")
    _assert_names(client.get("/ui/alerts/a%00b"), "transaction_id")
    card = client.get(f"/ui/alerts/{tid}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', card.text).group(1)  # type: ignore[union-attr]
    refused = client.post(f"/ui/alerts/{tid}/decision", data={"label": "escalate", "note": "n\x00", "csrf": csrf})
    assert refused.status_code == 422 and "note" in refused.text and "control character" in refused.text
    assert client.post("/login", data={"key": "flk_\x00", "csrf": "x"}).status_code == 422
    assert any_desk.store.get_alert(tid)["status"] == "new"
    client.cookies.clear()


@pytest.mark.parametrize("field", ["transaction_id", "merchant_id", "card_id"])
def test_a_nul_in_a_scored_transaction_is_422_on_both_stores(any_desk: Any, record_factory: Any, field: str) -> None:
    # explain=true looks the transaction up in the alert store: the id must be refused before that.
    record = record_factory(**{field: "a\x00b"})
    response = any_desk.client.post("/v1/score?explain=true", json=record, headers=any_desk.headers(Role.SCORER))
    assert response.status_code == 422, response.text
    assert any(e["field"] == field for e in response.json()["errors"]), response.json()


def test_a_page_form_with_too_many_fields_is_422(desk: Any) -> None:
    form = "&".join(f"f{i}=x" for i in range(50))
    response = desk.client.post("/login", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422 and "more than 20 fields" in response.text
