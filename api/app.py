"""``create_app(settings)``: the FastAPI app — REST API, investigator pages, health and metrics.

No import-time globals: everything an app needs hangs off ``app.state.ctx``, so
tests build as many apps as they like, each with its own settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.auth import BEARER
from api.context import AppContext
from api.errors import install_handlers
from api.limits import BodyLimitMiddleware
from api.observe import ObserveMiddleware, mask_secrets_in_logs
from api.security import STATIC_PREFIX, SecurityMiddleware
from api.settings import ApiSettings

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Any, api_settings: ApiSettings | None = None, *, load_model: bool = True) -> FastAPI:
    """The app for ``settings`` (the root Settings); ``api_settings`` defaults to ``settings.api``.

    Startup connects the store, creates missing tables and loads the model (the
    registry's champion unless ``api.model_path`` is set); without a model the API
    still serves alerts and ``/readyz`` says why it is not ready.
    """
    from api import pages
    from api.routes import alerts, audit, health, models, score

    api = api_settings or settings.api
    ctx = AppContext.build(settings, api)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mask_secrets_in_logs(settings)
        ctx.setup(load_model=load_model)
        try:
            yield
        finally:
            ctx.close()

    app = FastAPI(
        title="fraudlens",
        version="1",
        summary="Real-time card-fraud scoring, the investigator's alert desk and model cards.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pull their JS from a CDN; the document itself is /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_handlers(app)
    for router in (score.router, alerts.router, models.router, audit.router, health.router, pages.router):
        app.include_router(router)
    if api.metrics_key is not None:
        _declare_metrics_key(app)
    app.mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC_DIR), name="static")

    # Added innermost first: the access log sees every answer, the security headers go on the 413s too.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=api.max_body_bytes,
                       item_caps={("POST", "/v1/score"): api.max_batch})
    app.add_middleware(SecurityMiddleware, allowed_origins=api.allowed_origins)
    app.add_middleware(ObserveMiddleware, metrics=ctx.metrics)

    return app


def _declare_metrics_key(app: FastAPI) -> None:
    """Say in the OpenAPI document that GET /metrics takes a bearer key (api.metrics_key is set)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        operation = document.get("paths", {}).get("/metrics", {}).get("get")
        if operation is not None:
            operation["security"] = [{BEARER.scheme_name: []}]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
