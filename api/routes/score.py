"""``POST /v1/score``: one transaction or a batch, scored synchronously."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CtxDep, ScorerDep
from api.errors import ApiError, Unavailable
from api.schemas import ScoreBatchResult, ScoreResult, TransactionIn
from features.schema import SchemaError, Transaction, ValidationLimits

router = APIRouter(prefix="/v1", tags=["scoring"])


def _transactions(items: list[TransactionIn], batch: bool, limits: ValidationLimits) -> list[Transaction]:
    """Each item through the transaction contract, as the stream does; a refusal names the item and field."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Transaction.from_mapping(item.model_dump(exclude_none=True), limits))
        except SchemaError as exc:
            field = f"[{i}].{exc.field}" if batch else exc.field
            raise ApiError(f"{field}: {exc.reason}", status=422, title="Invalid transaction",
                           errors=[{"field": field, "reason": exc.reason}]) from None
    ids = [tx.transaction_id for tx in out]
    if len(set(ids)) != len(ids):
        raise ApiError("a batch must not repeat a transaction_id", status=422, title="Invalid transaction",
                       errors=[{"field": "transaction_id", "reason": "duplicate in batch"}])
    return out


@router.post("/score", response_model=ScoreResult | ScoreBatchResult,
             summary="Score one transaction (object) or a batch (array)")
def score(
    body: TransactionIn | list[TransactionIn],
    who: ScorerDep,
    ctx: CtxDep,
    explain: Annotated[bool, Query(description="Add the alert card (template narrative unless one is ready).")] = False,
) -> Any:
    batch = isinstance(body, list)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ApiError("a batch needs at least one transaction", status=422, title="Invalid request",
                       errors=[{"field": "body", "reason": "empty batch"}])
    if len(items) > ctx.api.max_batch:
        raise ApiError(f"a batch holds at most {ctx.api.max_batch} transactions, got {len(items)}", status=422,
                       title="Invalid request", errors=[{"field": "body", "reason": "batch too large"}])
    txs = _transactions(items, batch, ValidationLimits.from_settings(ctx.settings.features))
    service = ctx.scoring
    if service is None:
        raise Unavailable(f"no model loaded: {ctx.scoring_error or 'still starting'}")
    narratives = _ready_narratives(ctx, [tx.transaction_id for tx in txs]) if explain else None
    results = service.score(txs, explain=explain, narratives=narratives)
    for result in results:
        ctx.metrics.scored.labels(result["decision"]).inc()
    if batch:
        return ScoreBatchResult.model_validate({"results": results})
    return ScoreResult.model_validate(results[0])


def _ready_narratives(ctx: CtxDep, ids: list[str]) -> dict[str, Any]:
    """Narratives the narrative worker already wrote for alerts in the store."""
    ready = {}
    for transaction_id in ids:
        alert = ctx.store.get_alert(transaction_id)
        narrative = (alert or {}).get("card", {}).get("narrative") if alert else None
        if isinstance(narrative, dict) and narrative.get("status") == "generated":
            ready[transaction_id] = narrative
    return ready
