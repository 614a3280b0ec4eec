"""The investigator pages through the HTTP client: login, queue, card, decision, refusals."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.keys import Role


def _login_csrf(desk: Any) -> str:
    page = desk.client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _login(desk: Any, role: Role) -> None:
    response = desk.client.post("/login", data={"key": desk.keys[role], "next": "/ui/alerts", "csrf": _login_csrf(desk)},
                                follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui/alerts"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert desk.keys[role] not in response.headers["set-cookie"]


def test_pages_need_a_login(desk: Any) -> None:
    for path in ("/ui/alerts", "/ui/alerts/x"):
        response = desk.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert desk.client.get("/login").status_code == 200


def test_wrong_keys_and_the_scorer_role_cannot_log_in(desk: Any) -> None:
    for key in ("flk_nope", desk.keys[Role.SCORER]):
        response = desk.client.post("/login", data={"key": key, "csrf": _login_csrf(desk)}, follow_redirects=False)
        assert response.status_code == 401
    assert desk.client.get("/ui/alerts", follow_redirects=False).status_code == 303


def test_queue_card_and_decision(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    seeded = desk.seed(sample_records, 6)
    top = max(seeded, key=lambda r: r["score"])
    _login(desk, Role.INVESTIGATOR)

    queue = desk.client.get("/ui/alerts?sort=score&order=desc")
    assert queue.status_code == 200
    assert "cdn" not in queue.text.lower()
    assert re.findall(r"<script[^>]*>", queue.text) == ['<script src="/static/queue.js">']  # no inline script
    rows = re.findall(r'class="alert-link" href="/ui/alerts/([^"]+)"', queue.text)
    assert rows[0] == top["transaction_id"] and len(rows) == 6

    card = desk.client.get(f"/ui/alerts/{top['transaction_id']}")
    assert card.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in card.text and "<rect" in card.text
    assert 'id="narrative-badge">Template<' in card.text
    assert 'id="pattern">This payment resembles' in card.text and "log-odds" not in card.text  # the narrative plan
    assert top["card"]["transaction"]["card"] in card.text  # the masked card number
    csrf = re.search(r'name="csrf" value="([^"]+)"', card.text).group(1)  # type: ignore[union-attr]

    forged = desk.client.post(f"/ui/alerts/{top['transaction_id']}/decision",
                              data={"label": "confirmed_fraud", "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    saved = desk.client.post(f"/ui/alerts/{top['transaction_id']}/decision",
                             data={"label": "confirmed_fraud", "note": "cardholder denies", "csrf": csrf})
    assert saved.status_code == 200 and "Decision recorded" in saved.text
    assert "cardholder denies" in saved.text
    assert desk.store.get_alert(top["transaction_id"])["status"] == "confirmed_fraud"

    desk.client.post(f"/ui/alerts/{top['transaction_id']}/assign", data={"csrf": csrf})
    assert "investigator-tester" in desk.client.get(f"/ui/alerts/{top['transaction_id']}").text
    logout = desk.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert logout.status_code == 303
    desk.client.cookies.clear()


def test_validators_read_pages_but_cannot_decide(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    tid = desk.seed(sample_records, 1)[0]["transaction_id"]
    _login(desk, Role.VALIDATOR)
    page = desk.client.get(f"/ui/alerts/{tid}")
    assert page.status_code == 200 and "decision-form" not in page.text
    refused = desk.client.post(f"/ui/alerts/{tid}/decision", data={"label": "legitimate", "csrf": "x"})
    assert refused.status_code == 403
    assert desk.store.get_alert(tid)["status"] == "new"
    desk.client.cookies.clear()


def test_a_tampered_session_cookie_is_ignored(desk: Any) -> None:
    from api.sessions import COOKIE_NAME

    _login(desk, Role.INVESTIGATOR)
    token = desk.client.cookies.get(COOKIE_NAME)
    desk.client.cookies.clear()
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 5000, desk.keys[Role.INVESTIGATOR]):
        desk.client.cookies.set(COOKIE_NAME, forged)
        assert desk.client.get("/ui/alerts", follow_redirects=False).status_code == 303
    desk.client.cookies.clear()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui/", "/ui/alerts"])
def test_login_only_redirects_inside_the_app(desk: Any, target: str) -> None:
    response = desk.client.post("/login", data={"key": desk.keys[Role.ADMIN], "next": target,
                                                "csrf": _login_csrf(desk)}, follow_redirects=False)
    assert response.headers["location"] == "/ui/alerts"
    desk.client.cookies.clear()


def test_waterfall_adds_up_to_the_margin(sample_records: list[dict[str, Any]], desk: Any) -> None:
    from api.svg import waterfall_steps

    card = desk.seed(sample_records, 1)[0]["card"]
    steps = waterfall_steps(card)
    assert steps is not None
    assert steps[0][1] == pytest.approx(card["provenance"]["base_value"])
    assert steps[-1][2] == pytest.approx(card["provenance"]["margin"])
    assert waterfall_steps({"reasons": []}) is None
