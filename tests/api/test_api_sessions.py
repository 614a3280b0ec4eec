"""Page sessions: server-side, ended by logout, a CSRF token per session that changes at each login,
login and logout forms that carry one, and a cookie that is Secure wherever it should be."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.keys import Role
from api.sessions import COOKIE_NAME, LOGIN_COOKIE_NAME

CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def _token(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None and found.group(1), "the form carries no CSRF token"
    return found.group(1)


def _login(client: Any, key: str) -> Any:
    response = client.post("/login", data={"key": key, "csrf": _token(client.get("/login").text)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def test_a_cookie_replayed_after_logout_is_refused(desk: Any) -> None:
    client = desk.client
    _login(client, desk.keys[Role.INVESTIGATOR])
    cookie = client.cookies.get(COOKIE_NAME)
    queue = client.get("/ui/alerts")
    assert queue.status_code == 200
    logout = client.post("/logout", data={"csrf": _token(queue.text)}, follow_redirects=False)
    assert logout.status_code == 303 and logout.headers["location"] == "/login"
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, cookie)  # the attacker's copy of the cookie
    replay = client.get("/ui/alerts", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
    client.cookies.clear()


def test_the_database_keeps_no_usable_session_id(desk: Any) -> None:
    import sqlalchemy as sa

    _login(desk.client, desk.keys[Role.INVESTIGATOR])
    cookie = desk.client.cookies.get(COOKIE_NAME)
    with desk.store.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM page_sessions")) for v in row)
    assert cookie not in stored
    desk.client.cookies.clear()


def test_the_csrf_token_is_per_session_and_changes_at_login(desk: Any) -> None:
    client = desk.client
    key = desk.keys[Role.INVESTIGATOR]
    _login(client, key)
    first = _token(client.get("/ui/alerts").text)
    client.cookies.clear()
    _login(client, key)
    second = _token(client.get("/ui/alerts").text)
    assert first != second
    # The first session's token does not work in the second session.
    refused = client.post("/logout", data={"csrf": first}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/ui/alerts", follow_redirects=False).status_code == 200
    client.cookies.clear()


def test_login_needs_the_forms_token(desk: Any) -> None:
    client = desk.client
    key = desk.keys[Role.INVESTIGATOR]
    page = client.get("/login")
    assert client.cookies.get(LOGIN_COOKIE_NAME) == _token(page.text)
    for token in ("", "forged"):
        refused = client.post("/login", data={"key": key, "csrf": token}, follow_redirects=False)
        assert refused.status_code == 403 and COOKIE_NAME not in refused.headers.get("set-cookie", "")
    client.cookies.clear()
    # A cross-site form has the token in no cookie: the right key alone does not log anyone in.
    blind = client.post("/login", data={"key": key, "csrf": _token(page.text)}, follow_redirects=False)
    assert blind.status_code == 403


def test_logout_needs_the_sessions_token(desk: Any) -> None:
    client = desk.client
    _login(client, desk.keys[Role.INVESTIGATOR])
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/ui/alerts", follow_redirects=False).status_code == 200  # still logged in
    client.cookies.clear()


def test_revoking_the_key_ends_its_sessions(desk: Any) -> None:
    ctx = desk.client.app.state.ctx
    plaintext, principal = ctx.keys.create(Role.INVESTIGATOR)
    _login(desk.client, plaintext)
    assert desk.client.get("/ui/alerts", follow_redirects=False).status_code == 200
    ctx.keys.revoke(principal.key_id)
    assert desk.client.get("/ui/alerts", follow_redirects=False).status_code == 303
    desk.client.cookies.clear()


@pytest.mark.parametrize(("overrides", "base_url", "secure"), [
    ({}, "http://127.0.0.1", False),
    ({"host": "0.0.0.0"}, "http://desk.internal", True),
    ({}, "https://desk.example", True),
    ({"cookie_secure": True}, "http://127.0.0.1", True),
    ({"cookie_secure": False, "host": "0.0.0.0"}, "http://desk.internal", False),
])
def test_cookies_are_secure_unless_served_locally_over_http(make_desk: Any, overrides: dict[str, Any],
                                                              base_url: str, secure: bool) -> None:
    desk = make_desk(**overrides)
    with TestClient(desk.client.app, base_url=base_url) as client:
        # The login form's cookie: set the same way as the session's (a Secure one would not come
        # back over plain http, so the login itself is not run here).
        response = client.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert ("; secure" in cookie) is secure


def test_a_plain_http_login_to_a_secure_desk_says_https_is_needed(make_desk: Any) -> None:
    desk = make_desk(host="0.0.0.0")
    with TestClient(desk.client.app, base_url="http://desk.internal") as client:
        token = _token(client.get("/login").text)
        response = client.post("/login", data={"key": desk.keys[Role.INVESTIGATOR], "csrf": token})
    assert response.status_code == 403 and "https://" in response.text
