"""The append-only audit log: who (key id, role) did what, to which alert, when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from api.db import audit_table
from api.keys import Principal


def record_audit(conn: Connection, who: Principal, action: str, target: str | None,
                 detail: dict[str, Any] | None = None, *, at: datetime | None = None) -> None:
    """Insert one audit row inside the caller's transaction (so it commits with the action)."""
    conn.execute(insert(audit_table).values(at=at or datetime.now(UTC), key_id=who.key_id, role=who.role.value,
                                            action=action, target=target, detail=detail or {}))
