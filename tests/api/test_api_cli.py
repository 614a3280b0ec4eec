"""``fraudlens keys create`` and ``fraudlens labels export`` against a real store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudlens import cli


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FRAUDLENS_STORE__URL", url)
    monkeypatch.delenv("FRAUDLENS_CONFIG", raising=False)
    return url


def test_keys_create_prints_a_working_key_once(store_env: str) -> None:
    from api.keys import KeyStore, Role
    from streaming.settings import StoreSettings
    from streaming.store import SqlAlertStore

    result = CliRunner().invoke(cli.app, ["keys", "create", "--role", "investigator", "--name", "alice"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[-1]
    store = SqlAlertStore(StoreSettings(url=store_env))
    store.setup()
    principal = KeyStore(store.engine).verify(plaintext)
    store.close()
    assert principal is not None and principal.role is Role.INVESTIGATOR and principal.name == "alice"


def test_keys_create_refuses_an_unknown_role(store_env: str) -> None:
    result = CliRunner().invoke(cli.app, ["keys", "create", "--role", "superuser"])
    assert result.exit_code == 2
    assert "investigator" in result.output


def test_labels_export_writes_decisions_as_labels(store_env: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from api.db import decisions_table, setup_tables
    from streaming.settings import StoreSettings
    from streaming.store import SqlAlertStore

    store = SqlAlertStore(StoreSettings(url=store_env))
    store.setup()
    setup_tables(store.engine)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        for tid, label in (("a", "confirmed_fraud"), ("b", "legitimate"), ("c", "escalate")):
            conn.execute(insert(decisions_table).values(transaction_id=tid, label=label, note="", key_id="k",
                                                        actor="t", decided_at=now))
    store.close()
    out = tmp_path / "labels.csv"
    result = CliRunner().invoke(cli.app, ["labels", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["transaction_id"], r["is_fraud"]) for r in rows] == [("a", "1"), ("b", "0")]
    assert all(r["label_timestamp"] for r in rows)


def test_db_upgrade_migrates_the_store(store_env: str) -> None:
    import sqlalchemy as sa

    result = CliRunner().invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    from api.migrate import head

    assert f"revision {head()}" in result.output
    engine = sa.create_engine(store_env)
    assert {"alerts", "decisions", "audit_log", "api_keys", "shadow_scores", "drift_snapshots"} <= set(
        sa.inspect(engine).get_table_names())
    engine.dispose()
