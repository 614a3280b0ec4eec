"""Reading and working alerts: filtered, sorted, cursor-paginated queue; decisions; assignment.

The stream inserts alerts (``streaming.store``); the API only changes an alert's
``status`` and records decisions, assignments and the audit trail in the same
transaction, so an alert's status and its history never disagree.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from api.audit import record_audit
from api.db import assignments_table, audit_table, decisions_table
from api.errors import ApiError, NotFound
from api.keys import Principal
from api.text import TextError, clean_text
from streaming.store import alerts_table

Label = Literal["confirmed_fraud", "legitimate", "escalate"]
SortKey = Literal["created_at", "score", "amount"]
Order = Literal["asc", "desc"]

#: The status an alert moves to with each decision.
STATUS_OF_LABEL: dict[str, str] = {"confirmed_fraud": "confirmed_fraud", "legitimate": "legitimate",
                                   "escalate": "escalated"}
STATUSES = ("new", "assigned", "escalated", "confirmed_fraud", "legitimate")

_amount = alerts_table.c.card[("transaction", "amount")].as_float()
_merchant = alerts_table.c.card[("transaction", "merchant_id")].as_string()
_SORT_COLUMNS: dict[str, Any] = {"created_at": alerts_table.c.created_at, "score": alerts_table.c.score,
                                 "amount": _amount}


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    merchant_id: str | None = None
    assignee: str | None = None


class BadCursor(ApiError):
    status, title = 422, "Invalid request"


def encode_cursor(sort: str, order: str, value: Any, transaction_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, order, value, transaction_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c_sort, c_order, value, transaction_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise BadCursor("cursor is not one this API returned", errors=[{"field": "cursor", "reason": "malformed"}]) from None
    if (c_sort, c_order) != (sort, order) or not isinstance(transaction_id, str):
        raise BadCursor("cursor belongs to another sort order; start again without a cursor",
                        errors=[{"field": "cursor", "reason": "sort or order changed"}])
    try:
        clean_text(transaction_id, field="cursor")
    except TextError as exc:
        raise BadCursor(f"cursor: {exc.reason}", errors=[{"field": "cursor", "reason": exc.reason}]) from None
    if sort == "created_at":
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise BadCursor("cursor is not one this API returned",
                            errors=[{"field": "cursor", "reason": "malformed"}]) from None
    elif not isinstance(value, int | float) or isinstance(value, bool):
        raise BadCursor("cursor is not one this API returned", errors=[{"field": "cursor", "reason": "malformed"}])
    return value, transaction_id


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def alert_summary(row: Any) -> dict[str, Any]:
    """The queue's view of an alert: what the list shows, no card body."""
    card = row["card"] or {}
    tx = card.get("transaction") or {}
    return {
        "transaction_id": row["transaction_id"],
        "score": row["score"],
        "threshold": card.get("threshold"),
        "status": row["status"],
        "model_version": row["model_version"],
        "amount": tx.get("amount"),
        "currency": tx.get("currency"),
        "merchant_id": tx.get("merchant_id"),
        "transaction_time": tx.get("timestamp"),
        "created_at": _as_utc(row["created_at"]),
        "updated_at": _as_utc(row["updated_at"]),
        "assignee": row.get("assignee"),
    }


class AlertDesk:
    """Alert queries and the investigator's actions on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _base(self) -> Any:
        return select(alerts_table, assignments_table.c.assignee).select_from(
            alerts_table.outerjoin(assignments_table,
                                   assignments_table.c.transaction_id == alerts_table.c.transaction_id))

    def page(self, filters: AlertFilter, *, sort: SortKey = "created_at", order: Order = "desc", limit: int = 50,
             cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        column = _SORT_COLUMNS[sort]
        query = self._base()
        conditions: list[ColumnElement[bool]] = []
        if filters.status:
            conditions.append(alerts_table.c.status == filters.status)
        if filters.min_score is not None:
            conditions.append(alerts_table.c.score >= filters.min_score)
        if filters.max_score is not None:
            conditions.append(alerts_table.c.score <= filters.max_score)
        if filters.created_from is not None:
            conditions.append(alerts_table.c.created_at >= _as_utc(filters.created_from))
        if filters.created_to is not None:
            conditions.append(alerts_table.c.created_at <= _as_utc(filters.created_to))
        if filters.merchant_id:
            conditions.append(_merchant == filters.merchant_id)
        if filters.assignee:
            conditions.append(assignments_table.c.assignee == filters.assignee)
        if cursor:
            value, after_id = decode_cursor(cursor, sort, order)
            beyond = column > value if order == "asc" else column < value
            tie = alerts_table.c.transaction_id > after_id
            conditions.append(or_(beyond, and_(column == value, tie)))
        if conditions:
            query = query.where(and_(*conditions))
        primary = column.asc() if order == "asc" else column.desc()
        query = query.order_by(primary, alerts_table.c.transaction_id.asc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        items = [alert_summary(r) for r in rows]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            value = {"created_at": _as_utc(last["created_at"]), "score": last["score"],
                     "amount": (last["card"].get("transaction") or {}).get("amount")}[sort]
            next_cursor = encode_cursor(sort, order, value, last["transaction_id"])
        return items, next_cursor

    def get(self, transaction_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(self._base().where(alerts_table.c.transaction_id == transaction_id)).mappings().first()
            if row is None:
                raise NotFound(f"no alert for transaction {transaction_id!r}")
            decisions = conn.execute(
                select(decisions_table).where(decisions_table.c.transaction_id == transaction_id)
                .order_by(decisions_table.c.id.desc())
            ).mappings().all()
            history = conn.execute(
                select(audit_table).where(audit_table.c.target == transaction_id).order_by(audit_table.c.id.desc())
                .limit(50)
            ).mappings().all()
        alert = alert_summary(row)
        alert["card"] = row["card"]
        alert["decisions"] = [_decision(d) for d in decisions]
        alert["history"] = [_audit(h) for h in history]
        return alert

    def decide(self, transaction_id: str, label: Label, note: str, who: Principal) -> dict[str, Any]:
        now = datetime.now(UTC)
        status = STATUS_OF_LABEL[label]
        with self.engine.begin() as conn:
            found = conn.execute(update(alerts_table).where(alerts_table.c.transaction_id == transaction_id)
                                 .values(status=status, updated_at=now))
            if not found.rowcount:
                raise NotFound(f"no alert for transaction {transaction_id!r}")
            decision_id = conn.execute(insert(decisions_table).values(
                transaction_id=transaction_id, label=label, note=note, key_id=who.key_id, actor=who.name,
                decided_at=now,
            ).returning(decisions_table.c.id)).scalar_one()
            record_audit(conn, who, "decide", transaction_id, {"label": label, "decision_id": decision_id}, at=now)
        return {"id": decision_id, "transaction_id": transaction_id, "label": label, "note": note,
                "actor": who.name, "key_id": who.key_id, "decided_at": now, "status": status}

    def assign(self, transaction_id: str, assignee: str, who: Principal) -> dict[str, Any]:
        now = datetime.now(UTC)
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        values = {"transaction_id": transaction_id, "assignee": assignee, "assigned_by": who.key_id,
                  "assigned_at": now}
        upsert = dialect_insert(assignments_table).values(**values)
        upsert = upsert.on_conflict_do_update(index_elements=["transaction_id"],
                                              set_={k: upsert.excluded[k] for k in values if k != "transaction_id"})
        with self.engine.begin() as conn:
            row = conn.execute(select(alerts_table.c.status).where(alerts_table.c.transaction_id == transaction_id)
                               .with_for_update()).first()
            if row is None:
                raise NotFound(f"no alert for transaction {transaction_id!r}")
            conn.execute(upsert)
            status = row[0]
            if status == "new":
                status = "assigned"
                conn.execute(update(alerts_table).where(alerts_table.c.transaction_id == transaction_id)
                             .values(status=status, updated_at=now))
            record_audit(conn, who, "assign", transaction_id, {"assignee": assignee}, at=now)
        return {"transaction_id": transaction_id, "assignee": assignee, "assigned_at": now, "status": status}

    def audit_log(self, *, limit: int = 100, before_id: int | None = None,
                  target: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_table.c.id < before_id)
        if target is not None:
            query = query.where(audit_table.c.target == target)
        with self.engine.connect() as conn:
            return [_audit(r) for r in conn.execute(query).mappings()]


def _decision(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "label": row["label"], "note": row["note"], "actor": row["actor"],
            "key_id": row["key_id"], "decided_at": _as_utc(row["decided_at"])}


def _audit(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "at": _as_utc(row["at"]), "key_id": row["key_id"], "role": row["role"],
            "action": row["action"], "target": row["target"], "detail": row["detail"]}
