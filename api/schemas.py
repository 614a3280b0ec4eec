"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.alerts import Label
from api.text import CleanText, NoteText
from features.schema import DEFAULT_LIMITS, MAX_ID_LENGTH

_TEXT_OR_INT: list[dict[str, Any]] = [{"type": "string"}, {"type": "integer"}]
_NUMBER: list[dict[str, Any]] = [{"type": "number"}, {"type": "string"}]
_NULL: list[dict[str, Any]] = [{"type": "null"}]


def _raw(schema: dict[str, Any], description: str | None = None, **default: Any) -> Any:
    """A field pydantic passes on exactly as sent (``Any``: no coercion, ``true`` stays a boolean and
    ``"12"`` a string) for ``Transaction.from_mapping`` to judge; ``schema`` documents it in OpenAPI."""
    return Field(**default, description=description, json_schema_extra=schema)


class TransactionIn(BaseModel):
    """A transaction to score: the canonical fields (``features.schema.Transaction``).

    The body's shape (field names, no others) is checked here; every value is checked
    by ``Transaction.from_mapping``, the contract the stream and the file readers use, so
    the API accepts and refuses exactly what they do. Limits below are the defaults.
    """

    model_config = ConfigDict(extra="forbid")

    transaction_id: Any = _raw({"anyOf": _TEXT_OR_INT, "maxLength": MAX_ID_LENGTH})
    timestamp: Any = _raw({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
                          "ISO 8601 (naive = UTC) or epoch seconds; from 2000-01-01T00:00:00Z to now + 1 day.")
    card_id: Any = _raw({"anyOf": _TEXT_OR_INT, "maxLength": MAX_ID_LENGTH})
    merchant_id: Any = _raw({"anyOf": _TEXT_OR_INT, "maxLength": MAX_ID_LENGTH})
    amount: Any = _raw({"anyOf": _NUMBER, "minimum": 0, "maximum": DEFAULT_LIMITS.max_amount},
                       "Currency units, finite, from 0 to features.max_amount.")
    currency: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": 8}, default=None)
    customer_id: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": MAX_ID_LENGTH}, default=None)
    mcc: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": 8}, default=None)
    channel: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": 32}, default=None)
    country: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": 8}, default=None)
    latitude: Any = _raw({"anyOf": _NUMBER + _NULL, "minimum": -90, "maximum": 90}, default=None)
    longitude: Any = _raw({"anyOf": _NUMBER + _NULL, "minimum": -180, "maximum": 180}, default=None)
    device_id: Any = _raw({"anyOf": _TEXT_OR_INT + _NULL, "maxLength": MAX_ID_LENGTH}, default=None)


class Reason(BaseModel):
    feature: str
    text: str
    shap_value: float
    direction: str


class ScoreResult(BaseModel):
    transaction_id: str
    score: float
    decision: str = Field(description="alert | pass")
    threshold: float
    model_version: str
    reasons: list[Reason]
    card: dict[str, Any] | None = Field(None, description="The alert card (explain=true).")


class ScoreBatchResult(BaseModel):
    results: list[ScoreResult]


class AlertSummary(BaseModel):
    transaction_id: str
    score: float
    threshold: float | None = None
    status: str
    model_version: str
    amount: float | None = None
    currency: str | None = None
    merchant_id: str | None = None
    transaction_time: str | None = None
    created_at: datetime
    updated_at: datetime
    assignee: str | None = None


class AlertPage(BaseModel):
    items: list[AlertSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; absent on the last.")


class DecisionOut(BaseModel):
    id: int
    label: str
    note: str
    actor: str
    key_id: str
    decided_at: datetime


class AuditEntry(BaseModel):
    id: int
    at: datetime
    key_id: str
    role: str
    action: str
    target: str | None = None
    detail: dict[str, Any]


class AlertDetail(AlertSummary):
    card: dict[str, Any]
    decisions: list[DecisionOut]
    history: list[AuditEntry]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label
    note: NoteText = Field("", max_length=2000)


class DecisionResult(BaseModel):
    id: int
    transaction_id: str
    label: str
    note: str
    actor: str
    key_id: str
    decided_at: datetime
    status: str


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: CleanText = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")


class AssignResult(BaseModel):
    transaction_id: str
    assignee: str
    assigned_at: datetime
    status: str


class AuditPage(BaseModel):
    items: list[AuditEntry]


class ModelSummary(BaseModel):
    version: str
    champion: bool
    created_at: str | None = None


class DriftOut(BaseModel):
    """The latest live drift snapshot the stream took for a model version."""

    taken_at: datetime
    window_rows: int = Field(description="Scored transactions in the window the PSI was computed on.")
    psi: dict[str, float | None] = Field(description="PSI per variable (`score` and top features) against training.")
    flags: dict[str, str] = Field(description="stable (< 0.1) | shift (< 0.25) | major shift | unknown, per variable.")
    instance: str = Field("", description="The scoring process that took it (each sees its own partitions).")


class ModelCard(BaseModel):
    version: str
    champion: bool
    threshold: dict[str, Any]
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    drift: DriftOut | None = Field(None, description="Latest live drift snapshot; null when the stream never took one.")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_loaded: bool
    model_version: str | None = None
    store_reachable: bool
    detail: str | None = None
