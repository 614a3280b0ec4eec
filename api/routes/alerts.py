"""``/v1/alerts``: the queue, one alert, decisions and assignment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.alerts import STATUSES, AlertFilter, Order, SortKey
from api.audit import record_audit
from api.deps import AlertId, AlertReaderDep, CtxDep, DeskDep, InvestigatorDep
from api.schemas import AlertDetail, AlertPage, AssignIn, AssignResult, DecisionIn, DecisionResult
from api.text import CleanText

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

_STATUS_PATTERN = "^(" + "|".join(STATUSES) + ")$"


@router.get("", response_model=AlertPage, summary="The alert queue (filter, sort, cursor pagination)")
def list_alerts(
    who: AlertReaderDep,
    desk: DeskDep,
    ctx: CtxDep,
    status: Annotated[str | None, Query(pattern=_STATUS_PATTERN)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    created_from: Annotated[datetime | None, Query(alias="from", description="Created at or after (ISO 8601).")] = None,
    created_to: Annotated[datetime | None, Query(alias="to", description="Created at or before (ISO 8601).")] = None,
    merchant_id: Annotated[CleanText | None, Query(max_length=128)] = None,
    assignee: Annotated[CleanText | None, Query(max_length=64)] = None,
    sort: SortKey = "created_at",
    order: Order = "desc",
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: Annotated[CleanText | None, Query(max_length=1000)] = None,
) -> AlertPage:
    filters = AlertFilter(status=status, min_score=min_score, max_score=max_score, created_from=created_from,
                          created_to=created_to, merchant_id=merchant_id, assignee=assignee)
    items, next_cursor = desk.page(filters, sort=sort, order=order, limit=limit or ctx.api.page_size, cursor=cursor)
    return AlertPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/{transaction_id}", response_model=AlertDetail, summary="One alert with its card and history")
def get_alert(transaction_id: AlertId, who: AlertReaderDep, desk: DeskDep) -> AlertDetail:
    alert = desk.get(transaction_id)
    with desk.engine.begin() as conn:
        record_audit(conn, who, "view", transaction_id)
    return AlertDetail.model_validate(alert)


@router.post("/{transaction_id}/decision", response_model=DecisionResult, status_code=201,
             summary="Record an investigator's decision (it becomes a training label)")
def decide(transaction_id: AlertId, body: DecisionIn, who: InvestigatorDep, desk: DeskDep,
           ctx: CtxDep) -> DecisionResult:
    result = desk.decide(transaction_id, body.label, body.note, who)
    ctx.metrics.decisions.labels(body.label).inc()
    return DecisionResult.model_validate(result)


@router.post("/{transaction_id}/assign", response_model=AssignResult, summary="Assign the alert to someone")
def assign(transaction_id: AlertId, body: AssignIn, who: InvestigatorDep, desk: DeskDep) -> AssignResult:
    return AssignResult.model_validate(desk.assign(transaction_id, body.assignee, who))
