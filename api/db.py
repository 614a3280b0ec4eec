"""The API's own tables: decisions, assignments, the append-only audit log, API keys, page sessions.

They sit beside the stream's ``scores`` and ``alerts`` tables (:mod:`streaming.store`)
in the same database and on the same engine, but in a metadata of their own: the
stream never needs them, and creating them is the API's job (``setup_tables``, or the
Alembic migrations under ``api/migrations``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from streaming.store import metadata as store_metadata

metadata = MetaData()

#: Every decision an investigator records; the latest per alert is its label.
decisions_table = Table(
    "decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("transaction_id", String(128), nullable=False, index=True),
    Column("label", String(16), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("key_id", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

#: Who works an alert now (one row per alert, replaced on reassignment; history is in the audit log).
assignments_table = Table(
    "alert_assignments",
    metadata,
    Column("transaction_id", String(128), primary_key=True),
    Column("assignee", String(64), nullable=False),
    Column("assigned_by", String(32), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)

#: Append-only: the API inserts and never updates or deletes a row.
audit_table = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_log_target", "target"),
)

#: API keys, stored as a SHA-256 of the secret: keys are 256-bit random, so a slow hash adds nothing.
api_keys_table = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

#: Page sessions: the cookie holds a random id, the table its keyed hash. Logout revokes the row.
page_sessions_table = Table(
    "page_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


_SQLITE_GUARDS = [
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def guard_audit_log(conn: Connection) -> None:
    """Make the database itself refuse UPDATE and DELETE on the audit log (idempotent)."""
    statements = _POSTGRES_GUARDS if conn.dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in statements:
        conn.execute(text(statement))


def setup_tables(engine: Engine) -> None:
    """Create the stream's and the API's tables if missing, and guard the audit log (idempotent)."""
    store_metadata.create_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        guard_audit_log(conn)
