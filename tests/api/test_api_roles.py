"""Every route refuses every role it does not name (403) and every caller without a valid key (401)."""

from __future__ import annotations

from typing import Any

import pytest

from api.keys import Role

S, INV, V, A = Role.SCORER, Role.INVESTIGATOR, Role.VALIDATOR, Role.ADMIN
TID = "{tid}"

#: (method, path, json body, roles allowed). Admin is allowed everywhere.
ROUTES: list[tuple[str, str, Any, set[Role]]] = [
    ("POST", "/v1/score", "record", {S, A}),
    ("GET", "/v1/alerts", None, {INV, V, A}),
    ("GET", f"/v1/alerts/{TID}", None, {INV, V, A}),
    ("POST", f"/v1/alerts/{TID}/decision", {"label": "escalate", "note": "n"}, {INV, A}),
    ("POST", f"/v1/alerts/{TID}/assign", {"assignee": "bob"}, {INV, A}),
    ("GET", "/v1/models", None, {V, A}),
    ("GET", "/v1/models/{version}", None, {V, A}),
    ("GET", "/v1/audit", None, {V, A}),
]


@pytest.fixture(scope="module")
def desk(shared_desk: Any) -> Any:
    return shared_desk


@pytest.fixture(scope="module")
def world(desk: Any, sample_records: list[dict[str, Any]]) -> dict[str, Any]:
    tid = desk.seed(sample_records, 1)[0]["transaction_id"]
    version = desk.client.get("/v1/models", headers=desk.headers(A)).json()[0]["version"]
    return {"tid": tid, "version": version, "record": sample_records[5]}


def _call(desk: Any, method: str, path: str, body: Any, world: dict[str, Any], headers: dict[str, str]) -> Any:
    url = path.replace(TID, world["tid"]).replace("{version}", world["version"])
    payload = world["record"] if body == "record" else body
    return desk.client.request(method, url, json=payload, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_each_role_gets_exactly_its_routes(desk: Any, world: dict[str, Any], method: str, path: str, body: Any,
                                           allowed: set[Role]) -> None:
    for role in Role:
        response = _call(desk, method, path, body, world, desk.headers(role))
        if role in allowed:
            assert response.status_code in (200, 201), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
            assert role.value in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_no_key_or_a_bad_key_is_401(desk: Any, world: dict[str, Any], method: str, path: str, body: Any,
                                    allowed: set[Role]) -> None:
    bad_keys: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer flk_000000000000_not-a-real-key"},
        {"X-API-Key": "nonsense"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ]
    for headers in bad_keys:
        response = _call(desk, method, path, body, world, headers)
        assert response.status_code == 401, (headers, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_x_api_key_header_works_too(desk: Any) -> None:
    assert desk.client.get("/v1/alerts", headers={"X-API-Key": desk.keys[INV]}).status_code == 200


def test_a_revoked_key_is_refused(desk: Any) -> None:
    ctx = desk.client.app.state.ctx
    plaintext, principal = ctx.keys.create(Role.INVESTIGATOR)
    assert desk.client.get("/v1/alerts", headers={"X-API-Key": plaintext}).status_code == 200
    ctx.keys.revoke(principal.key_id)
    assert desk.client.get("/v1/alerts", headers={"X-API-Key": plaintext}).status_code == 401


def test_keys_are_stored_hashed(desk: Any) -> None:
    import sqlalchemy as sa

    with desk.store.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM api_keys")) for v in row)
    for plaintext in desk.keys.values():
        assert plaintext not in stored
        assert plaintext.split("_", 2)[2] not in stored


def test_a_session_cookie_does_not_open_the_json_api(desk: Any) -> None:
    """The REST API takes keys in headers only; the cookie is for pages (no CSRF on the API)."""
    import re

    csrf = re.search(r'name="csrf" value="([^"]+)"', desk.client.get("/login").text).group(1)  # type: ignore[union-attr]
    login = desk.client.post("/login", data={"key": desk.keys[INV], "csrf": csrf}, follow_redirects=False)
    assert login.status_code == 303
    assert desk.client.get("/v1/alerts").status_code == 401
    desk.client.cookies.clear()


def test_public_endpoints_need_no_key(desk: Any) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert desk.client.get(path).status_code == 200, path
