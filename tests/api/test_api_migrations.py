"""The Alembic migration creates every table, on SQLite and PostgreSQL, and is idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from api.migrate import current, head, upgrade

TABLES = {"scores", "alerts", "decisions", "alert_assignments", "audit_log", "api_keys", "shadow_scores", "drift_snapshots",
          "page_sessions"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        return sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    return sa.create_engine(request.getfixturevalue("pg_url"))


def test_upgrade_creates_every_table_and_runs_twice(engine: sa.Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert current(engine) == head()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_upgrade_adopts_tables_the_stream_already_created(engine: sa.Engine) -> None:
    from streaming.store import metadata

    metadata.create_all(engine)
    upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_the_audit_log_refuses_updates_and_deletes(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_log (at, key_id, role, action, target, detail) "
                             "VALUES (CURRENT_TIMESTAMP, 'k', 'admin', 'test', 't', '{}')"))
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT action FROM audit_log")).scalars().all() == ["test"]
    engine.dispose()
