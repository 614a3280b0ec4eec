"""No PII (full card id, customer id) in the logs, whatever the request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from api.keys import Role

CARD_ID = "4111111111111111"  # as record_factory sets it
CUSTOMER = "cust-jane.doe@example.com"


def test_no_pii_in_logs_on_success_or_failure(desk: Any, record_factory: Any, caplog: pytest.LogCaptureFixture,
                                              sample_records: list[dict[str, Any]]) -> None:
    caplog.set_level(logging.DEBUG)
    scorer = desk.headers(Role.SCORER)
    good = desk.client.post("/v1/score?explain=true", json=record_factory(), headers=scorer)
    assert good.status_code == 200
    assert CARD_ID not in good.text and CUSTOMER not in good.text  # nor in the response: the card is masked
    desk.client.post("/v1/score", json=[record_factory(), record_factory(amount="bad")], headers=scorer)
    desk.client.post("/v1/score", json=record_factory(latitude=1000), headers=scorer)
    desk.client.post("/v1/score", json=record_factory(), headers={"X-API-Key": "flk_x_" + CARD_ID})
    tid = desk.seed(sample_records, 1)[0]["transaction_id"]
    desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": "escalate", "note": "called the customer"},
                     headers=desk.headers(Role.INVESTIGATOR))
    desk.client.post("/login", data={"key": "flk_" + CARD_ID}, follow_redirects=False)

    assert caplog.records, "the access log should have lines"
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__.get("args")) for r in caplog.records)
    for secret in (CARD_ID, CUSTOMER, *desk.keys.values()):
        assert secret not in logged
    assert "/v1/score" in logged  # the access log speaks of routes, not payloads
