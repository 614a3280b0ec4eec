"""``/healthz`` (the process answers), ``/readyz`` (model loaded, store reachable), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import CtxDep, MetricsAccessDep
from api.schemas import Health, Readiness
from explain.redaction import redact, secret_values

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, summary="Readiness")
def readyz(ctx: CtxDep) -> JSONResponse:
    reachable = ctx.store_reachable()
    loaded = ctx.scoring is not None
    ready = reachable and loaded
    # Unauthenticated: why the model is missing may quote a connection string (Redis URL); never its password.
    detail = None if loaded or ctx.scoring_error is None else redact(ctx.scoring_error, secret_values(ctx.settings))
    body = Readiness(status="ready" if ready else "not ready", model_loaded=loaded,
                     model_version=ctx.scoring.model_version if ctx.scoring else None, store_reachable=reachable,
                     detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: CtxDep, _access: MetricsAccessDep) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
