"""Security headers on every page, no inline script, cross-origin posts refused, /metrics behind a key on
request, and the API key scheme declared in the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.keys import Role
from api.security import CSP

PAGES = ["/login", "/ui/alerts", "/ui/alerts/{tid}", "/ui/alerts/no-such-alert"]


@pytest.fixture(scope="module")
def desk(shared_desk: Any) -> Any:
    return shared_desk


@pytest.fixture(scope="module")
def tid(desk: Any, sample_records: list[dict[str, Any]]) -> str:
    return str(desk.seed(sample_records, 2)[0]["transaction_id"])


@pytest.fixture
def logged_in(desk: Any) -> Any:
    client = desk.client
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"key": desk.keys[Role.INVESTIGATOR], "csrf": token},
                       follow_redirects=False).status_code == 303
    yield client
    client.cookies.clear()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_security_headers(logged_in: Any, tid: str, path: str) -> None:
    response = logged_in.get(path.replace("{tid}", tid))
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert csp == CSP
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", PAGES)
def test_no_page_has_inline_script_or_style(logged_in: Any, tid: str, path: str) -> None:
    html = logged_in.get(path.replace("{tid}", tid)).text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert re.search(r'\bsrc="/static/[^"]+\.js"', tag), tag  # script from a file of this app only
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"


def test_the_static_files_are_served(desk: Any) -> None:
    css = desk.client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = desk.client.get("/static/queue.js")
    assert js.status_code == 200 and "keydown" in js.text
    assert js.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("origin", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                    {"Referer": "https://evil.example/page"}])
def test_a_cross_origin_post_is_refused(logged_in: Any, tid: str, origin: dict[str, str]) -> None:
    page = logged_in.get(f"/ui/alerts/{tid}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    refused = logged_in.post(f"/ui/alerts/{tid}/assign", data={"csrf": csrf}, headers=origin, follow_redirects=False)
    assert refused.status_code == 403 and "cross-origin" in refused.json()["detail"]
    assert logged_in.post("/logout", data={"csrf": csrf}, headers=origin).status_code == 403
    same = logged_in.post(f"/ui/alerts/{tid}/assign", data={"csrf": csrf}, follow_redirects=False,
                          headers={"Origin": "http://testserver"})
    assert same.status_code == 303


def test_a_cross_origin_api_post_is_refused_too(desk: Any, tid: str) -> None:
    response = desk.client.post(f"/v1/alerts/{tid}/assign", json={"assignee": "eve"},
                                headers={**desk.headers(Role.INVESTIGATOR), "Origin": "https://evil.example"})
    assert response.status_code == 403


def test_an_allowed_origin_may_post(make_desk: Any, sample_records: list[dict[str, Any]]) -> None:
    desk = make_desk(allowed_origins=["https://desk.example"])
    tid = desk.seed(sample_records, 1)[0]["transaction_id"]
    response = desk.client.post(f"/v1/alerts/{tid}/assign", json={"assignee": "bob"},
                                headers={**desk.headers(Role.INVESTIGATOR), "Origin": "https://desk.example"})
    assert response.status_code == 200, response.text


def test_metrics_is_public_by_default(desk: Any) -> None:
    assert desk.client.get("/metrics").status_code == 200


def test_metrics_behind_a_key(make_desk: Any) -> None:
    desk = make_desk(metrics_key="scrape-secret-0123456789")
    client = desk.client
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=desk.headers(Role.INVESTIGATOR)).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"})
    assert scraped.status_code == 200 and "fraudlens_api_requests_total" in scraped.text
    assert client.get("/metrics", headers=desk.headers(Role.ADMIN)).status_code == 200
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert {"bearerKey": []} in operation["security"]


def test_the_openapi_document_declares_the_key_scheme(desk: Any) -> None:
    document = desk.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {"type": "http", "scheme": "bearer", "description": schemes["bearerKey"]["description"]}
    assert schemes["apiKeyHeader"]["type"] == "apiKey" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    protected = {("post", "/v1/score"), ("get", "/v1/alerts"), ("get", "/v1/alerts/{transaction_id}"),
                 ("post", "/v1/alerts/{transaction_id}/decision"), ("post", "/v1/alerts/{transaction_id}/assign"),
                 ("get", "/v1/models"), ("get", "/v1/models/{version}"), ("get", "/v1/audit")}
    for method, path in protected:
        security = document["paths"][path][method]["security"]
        assert {"bearerKey": []} in security and {"apiKeyHeader": []} in security, (method, path)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in document["paths"][path]["get"], path
