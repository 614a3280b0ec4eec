"""Health, readiness, metrics and model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import ApiSettings, create_app
from api.keys import Role
from fraudlens.settings import Settings


@pytest.fixture(scope="module")
def desk(shared_desk: Any) -> Any:
    return shared_desk


def test_healthz_and_readyz(desk: Any) -> None:
    assert desk.client.get("/healthz").json() == {"status": "ok"}
    ready = desk.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_loaded"] and ready.json()["store_reachable"]
    assert ready.json()["model_version"].startswith("fl-")


def test_without_a_model_alerts_work_but_scoring_and_readiness_say_why(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path, model={"registry_dir": tmp_path / "empty"},
                        store={"url": f"sqlite:///{tmp_path / 's.db'}"}, narrative={"backend": "template"})
    app = create_app(settings, ApiSettings())
    with TestClient(app) as client:
        plaintext, _ = app.state.ctx.keys.create(Role.ADMIN)
        headers = {"Authorization": f"Bearer {plaintext}"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "no champion" in ready.json()["detail"]
        assert client.get("/v1/alerts", headers=headers).status_code == 200
        record = {"transaction_id": "t1", "timestamp": "2026-01-01T00:00:00", "card_id": "c1", "merchant_id": "m",
                  "amount": 5.0}
        refused = client.post("/v1/score", json=record, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/models", headers=headers).json() == []


def test_metrics_count_requests_by_route_and_scores_by_decision(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    desk.client.post("/v1/score", json=sample_records[:3], headers=desk.headers(Role.SCORER))
    desk.client.get("/v1/alerts/some-id", headers=desk.headers(Role.INVESTIGATOR))
    text = desk.client.get("/metrics").text
    assert "fraudlens_api_scored_total" in text
    assert 'route="/v1/alerts/{transaction_id}"' in text  # the template, never the id
    assert "some-id" not in text
    assert "fraudlens_api_request_seconds_bucket" in text


def test_model_list_and_model_card(desk: Any) -> None:
    headers = desk.headers(Role.VALIDATOR)
    models = desk.client.get("/v1/models", headers=headers).json()
    assert len(models) == 1 and models[0]["champion"]
    card = desk.client.get(f"/v1/models/{models[0]['version']}", headers=headers).json()
    assert card["version"] == models[0]["version"]
    assert card["threshold"] and card["metrics"] and card["manifest"]
    assert "params" in card["manifest"] or "seed" in str(card["manifest"])


def test_openapi_documents_every_api_route_and_its_errors(desk: Any) -> None:
    spec = desk.client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/score", "/v1/alerts", "/v1/alerts/{transaction_id}", "/v1/alerts/{transaction_id}/decision",
            "/v1/alerts/{transaction_id}/assign", "/v1/models", "/v1/models/{version}", "/v1/audit", "/healthz",
            "/readyz", "/metrics"} <= paths
    assert not any(p.startswith("/ui") or p == "/login" for p in paths)  # pages stay out of the API contract
