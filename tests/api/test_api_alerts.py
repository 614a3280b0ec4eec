"""The alert desk on SQLite and PostgreSQL: queue filters, sort, cursors, decisions, assignment, audit."""

from __future__ import annotations

from typing import Any

from api.keys import Role


def _all_pages(desk: Any, query: str, role: Role = Role.INVESTIGATOR) -> list[dict[str, Any]]:
    items, cursor = [], None
    for _ in range(100):
        url = f"/v1/alerts?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = desk.client.get(url, headers=desk.headers(role))
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_cursor_pagination_walks_every_alert_once_in_order(any_desk: Any, sample_records: list[dict[str, Any]]) -> None:
    seeded = any_desk.seed(sample_records, 23)
    for sort in ("score", "amount", "created_at"):
        for order in ("asc", "desc"):
            items = _all_pages(any_desk, f"sort={sort}&order={order}&limit=5")
            assert sorted(i["transaction_id"] for i in items) == sorted(r["transaction_id"] for r in seeded)
            keys = [i["created_at" if sort == "created_at" else sort] for i in items]
            assert keys == sorted(keys, reverse=order == "desc"), (sort, order)


def test_filters_by_score_merchant_status_and_time(any_desk: Any, sample_records: list[dict[str, Any]]) -> None:
    seeded = any_desk.seed(sample_records, 20)
    scores = sorted(r["score"] for r in seeded)
    cut = scores[10]
    high = _all_pages(any_desk, f"min_score={cut}")
    assert {i["transaction_id"] for i in high} == {r["transaction_id"] for r in seeded if r["score"] >= cut}
    low = _all_pages(any_desk, f"max_score={cut}")
    assert all(i["score"] <= cut for i in low) and low

    merchant = seeded[0]["card"]["transaction"]["merchant_id"]
    by_merchant = _all_pages(any_desk, f"merchant_id={merchant}")
    assert by_merchant and all(i["merchant_id"] == merchant for i in by_merchant)

    assert len(_all_pages(any_desk, "status=new")) == 20
    assert _all_pages(any_desk, "status=legitimate") == []
    assert len(_all_pages(any_desk, "from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z")) == 20
    assert _all_pages(any_desk, "from=2999-01-01T00:00:00Z") == []


def test_decision_changes_status_is_audited_and_exported_as_a_label(any_desk: Any,
                                                                     sample_records: list[dict[str, Any]]) -> None:
    from api.labels import decision_labels

    first, second, third = (r["transaction_id"] for r in any_desk.seed(sample_records, 3))
    inv = any_desk.headers(Role.INVESTIGATOR)
    assigned = any_desk.client.post(f"/v1/alerts/{first}/assign", json={"assignee": "alice"}, headers=inv)
    assert assigned.status_code == 200 and assigned.json()["status"] == "assigned"
    for tid, label in ((first, "confirmed_fraud"), (second, "legitimate"), (third, "escalate")):
        response = any_desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": label, "note": "checked"},
                                        headers=inv)
        assert response.status_code == 201, response.text

    detail = any_desk.client.get(f"/v1/alerts/{first}", headers=inv).json()
    assert detail["status"] == "confirmed_fraud"
    assert detail["assignee"] == "alice"
    assert detail["decisions"][0]["label"] == "confirmed_fraud"
    assert detail["decisions"][0]["actor"] == "investigator-tester"
    assert {"assign", "decide"} <= {h["action"] for h in detail["history"]}
    assert [i["transaction_id"] for i in _all_pages(any_desk, "assignee=alice")] == [first]
    assert _all_pages(any_desk, "status=escalated")[0]["transaction_id"] == third

    audit = any_desk.client.get(f"/v1/audit?target={first}", headers=any_desk.headers(Role.VALIDATOR))
    assert audit.status_code == 200
    actions = [e["action"] for e in audit.json()["items"]]
    assert actions[:3] == ["view", "decide", "assign"]  # newest first
    assert all(e["key_id"] and e["role"] for e in audit.json()["items"])

    labels = {row["transaction_id"]: row["is_fraud"] for row in decision_labels(any_desk.store.engine)}
    assert labels == {first: 1, second: 0}  # escalate is not a label


def test_the_latest_decision_is_the_label(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    from api.labels import decision_labels

    tid = desk.seed(sample_records, 1)[0]["transaction_id"]
    for label in ("confirmed_fraud", "legitimate"):
        desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": label}, headers=desk.headers(Role.ADMIN))
    assert [row["is_fraud"] for row in decision_labels(desk.store.engine)] == [0]


def test_a_replayed_alert_keeps_its_decision(desk: Any, sample_records: list[dict[str, Any]]) -> None:
    """The stream inserts alerts idempotently by transaction id: a replay must not reset a worked alert."""
    seeded = desk.seed(sample_records, 2)
    tid = seeded[0]["transaction_id"]
    desk.client.post(f"/v1/alerts/{tid}/decision", json={"label": "legitimate"}, headers=desk.headers(Role.ADMIN))
    desk.seed(sample_records, 2)
    assert desk.store.count_alerts() == 2
    assert desk.store.get_alert(tid)["status"] == "legitimate"
