"""Request and response bodies of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.alerts import Label
from api.text import CleanText, NoteText


class TransactionIn(BaseModel):
    """A transaction to score: the canonical fields (``features.schema.Transaction``)."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: str = Field(min_length=1, max_length=128)
    timestamp: datetime | str | Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)] = Field(
        description="ISO 8601 (naive = UTC) or epoch seconds.")
    card_id: str = Field(min_length=1, max_length=128)
    merchant_id: str = Field(min_length=1, max_length=128)
    # Finite and bounded: a float64 beyond float32 range would reach the model as inf.
    amount: float = Field(allow_inf_nan=False, gt=-1e12, lt=1e12)
    currency: str | None = Field(None, max_length=8)
    customer_id: str | None = Field(None, max_length=128)
    mcc: str | None = Field(None, max_length=16)
    channel: str | None = Field(None, max_length=32)
    country: str | None = Field(None, max_length=8)
    latitude: float | None = Field(None, allow_inf_nan=False)
    longitude: float | None = Field(None, allow_inf_nan=False)
    device_id: str | None = Field(None, max_length=128)


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
