"""Typed dependency aliases the routers use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from api.alerts import AlertDesk
from api.auth import metrics_access, require
from api.context import AppContext
from api.keys import Principal, Role
from api.text import CleanText


# async: no I/O, so they run on the event loop instead of costing a thread hop each.
async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


async def get_desk(request: Request) -> AlertDesk:
    desk = (await get_ctx(request)).desk
    assert desk is not None, "app used before startup"
    return desk


CtxDep = Annotated[AppContext, Depends(get_ctx)]
DeskDep = Annotated[AlertDesk, Depends(get_desk)]

ScorerDep = Annotated[Principal, Depends(require(Role.SCORER))]
AlertReaderDep = Annotated[Principal, Depends(require(Role.INVESTIGATOR, Role.VALIDATOR))]
InvestigatorDep = Annotated[Principal, Depends(require(Role.INVESTIGATOR))]
ModelReaderDep = Annotated[Principal, Depends(require(Role.VALIDATOR))]
AuditReaderDep = Annotated[Principal, Depends(require(Role.VALIDATOR))]

#: Nothing when /metrics is public; else the metrics key or an admin key (api.metrics_key).
MetricsAccessDep = Annotated[None, Depends(metrics_access)]

PageReaderDep = Annotated[Principal, Depends(require(Role.INVESTIGATOR, Role.VALIDATOR, cookie=True))]
PageInvestigatorDep = Annotated[Principal, Depends(require(Role.INVESTIGATOR, cookie=True))]

#: An alert id in a path: one line of text, no control characters (PostgreSQL refuses a NUL).
AlertId = Annotated[CleanText, Path(min_length=1, max_length=128, description="The alert's transaction id.")]
