"""``create_app(settings)``: the FastAPI app — REST API, investigator pages, health and metrics.

No import-time globals: everything an app needs hangs off ``app.state.ctx``, so
tests build as many apps as they like, each with its own settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.context import AppContext
from api.errors import install_handlers
from api.observe import ObserveMiddleware
from api.settings import ApiSettings


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

    app.add_middleware(ObserveMiddleware, metrics=ctx.metrics)

    return app
