"""Resource limits: oversize bodies and batches are refused before they are parsed, error lists are capped,
failed authentication is rate-limited, and scoring never holds up the event loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.keys import Role
from api.limits import count_items

JSON = {"content-type": "application/json"}


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_count_items_stops_at_the_cap() -> None:
    assert count_items(b" [ {}, [1, 2], \"x\" ] ", cap=5) == 3
    assert count_items(b"[]", cap=5) == 0
    # Past the cap nothing is decoded: the tail here is not JSON at all.
    assert count_items(b"[{}, {}, {}, this is not json", cap=2) == 3
    assert count_items(b"[{}, {} this", cap=5) is None
    assert count_items(b'{"a": [1, 2, 3]}', cap=1) is None
    assert count_items(b"\xff\xfe", cap=1) is None


def test_a_declared_oversize_body_is_413_without_being_read(make_desk: Any) -> None:
    desk = make_desk(max_body_bytes=4096)
    # Valid JSON up to the limit and garbage after it: a parser would answer 422; the limit answers first.
    body = b"[" + b"{}," * 1000 + b"\x00 not json" * 1000
    response = desk.client.post("/v1/score", content=body, headers={**JSON, **desk.headers(Role.SCORER)})
    problem = _problem(response, 413)
    assert "4096" in problem["detail"]
    # The same on a route without a batch cap, and before authentication.
    _problem(desk.client.post("/v1/alerts/x/decision", content=body, headers=JSON), 413)


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(make_desk: Any) -> None:
    desk = make_desk(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b"[" + b"{}," * 2000 + b"garbage that no JSON parser accepts"

    response = desk.client.post("/v1/score", content=chunks(), headers={**JSON, **desk.headers(Role.SCORER)})
    assert "content-length" not in response.request.headers
    _problem(response, 413)


def test_a_batch_over_the_cap_is_422_naming_the_cap(make_desk: Any, record_factory: Any) -> None:
    desk = make_desk(max_batch=1000)
    headers = {**JSON, **desk.headers(Role.SCORER)}
    # 1,001 items and then a tail that is not JSON: the count is refused before the tail is ever parsed.
    body = ("[" + ",".join(['{"transaction_id": "t"}'] * 1001) + ", {{{ not json").encode()
    problem = _problem(desk.client.post("/v1/score", content=body, headers=headers), 422)
    assert "1000" in problem["detail"]
    assert problem["errors"][0]["field"] == "body" and "1000" in problem["errors"][0]["reason"]

    batch = [record_factory() for _ in range(1001)]
    problem = _problem(desk.client.post("/v1/score", json=batch, headers=headers), 422)
    assert "at most 1000" in problem["detail"]


def test_an_error_list_for_5000_bad_items_is_capped(make_desk: Any) -> None:
    desk = make_desk(max_batch=10_000, max_errors=20)
    response = desk.client.post("/v1/score", json=[{"amount": "x"}] * 5000, headers=desk.headers(Role.SCORER))
    problem = _problem(response, 422)
    assert len(problem["errors"]) == 20
    assert problem["error_count"] >= 5000
    assert len(response.content) < 10_000
    assert "more" in problem["detail"]


def test_the_cap_applies_to_every_routes_error_list(make_desk: Any) -> None:
    desk = make_desk(max_errors=2)
    query = "status=bogus&min_score=2&max_score=-1&limit=0&sort=nope&order=sideways"
    problem = _problem(desk.client.get(f"/v1/alerts?{query}", headers=desk.headers(Role.INVESTIGATOR)), 422)
    assert len(problem["errors"]) == 2 and problem["error_count"] == 6


def test_wrong_keys_are_rate_limited_per_address(make_desk: Any) -> None:
    desk = make_desk(auth_fail_burst=50, auth_fail_per_minute=6)
    statuses = []
    for i in range(300):
        response = desk.client.get("/v1/alerts", headers={"Authorization": f"Bearer flk_{i:012x}_wrong"})
        statuses.append(response.status_code)
    assert statuses[:50] == [401] * 50
    assert set(statuses[50:]) == {429}
    refused = desk.client.get("/v1/alerts", headers={"Authorization": "Bearer flk_abc_wrong"})
    problem = _problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1 and "retry" in problem["detail"]
    # The login form counts against the same allowance.
    assert desk.client.post("/login", data={"key": "flk_abc_wrong"}).status_code == 429


def test_wrong_keys_are_rate_limited_per_key_id_across_addresses(make_desk: Any) -> None:
    desk = make_desk(auth_fail_burst=5, auth_fail_per_minute=1)
    app = desk.client.app
    real_key = desk.keys[Role.INVESTIGATOR]
    key_id = real_key.split("_")[1]
    guess = {"X-API-Key": f"flk_{key_id}_guessed-secret"}
    with TestClient(app, client=("10.0.0.1", 1000)) as first, TestClient(app, client=("10.0.0.2", 1000)) as second, \
            TestClient(app, client=("10.0.0.3", 1000)) as third:
        for _ in range(5):
            assert first.get("/v1/alerts", headers=guess).status_code == 401
        # Another address guessing the same key id is refused; guessing another id it is not.
        refused = second.get("/v1/alerts", headers=guess)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert second.get("/v1/alerts", headers={"X-API-Key": "flk_bbbbbbbbbbbb_guess"}).status_code == 401
        # The key's holder is never locked out by guesses under its id; the guessing address is.
        assert third.get("/v1/alerts", headers={"X-API-Key": real_key}).status_code == 200
        assert first.get("/v1/alerts", headers={"X-API-Key": real_key}).status_code == 429


def test_health_answers_while_a_large_scoring_request_runs(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    """Scoring holds its thread until /healthz has answered: were scoring on the event loop, /healthz
    could not answer until scoring gave up waiting, and the order below would be reversed."""
    service = desk.client.app.state.ctx.scoring
    scoring_started, health_answered = threading.Event(), threading.Event()
    order: list[str] = []
    real_score = service.score

    def score_after_health(*args: Any, **kwargs: Any) -> Any:
        scoring_started.set()
        health_answered.wait(timeout=30)
        return real_score(*args, **kwargs)

    service.score = score_after_health
    result: dict[str, Any] = {}

    def post() -> None:
        result["response"] = desk.client.post("/v1/score?explain=true", json=sample_records[:300],
                                              headers=desk.headers(Role.SCORER))
        order.append("score")

    worker = threading.Thread(target=post)
    try:
        worker.start()
        assert scoring_started.wait(timeout=60)
        health = desk.client.get("/healthz")
        order.append("health")
        health_answered.set()
        worker.join(timeout=120)
    finally:
        health_answered.set()
        service.score = real_score
    assert health.status_code == 200
    assert result["response"].status_code == 200 and len(result["response"].json()["results"]) == 300
    assert order == ["health", "score"]


@pytest.mark.parametrize("path", ["/healthz", "/v1/alerts"])
def test_small_requests_are_untouched(desk: Any, path: str) -> None:
    assert desk.client.get(path, headers=desk.headers(Role.ADMIN)).status_code == 200
