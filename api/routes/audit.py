"""``/v1/audit``: the append-only audit log, for validators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuditReaderDep, DeskDep
from api.schemas import AuditPage
from api.text import CleanText

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
def audit_log(
    who: AuditReaderDep,
    desk: DeskDep,
    target: Annotated[CleanText | None, Query(max_length=128, description="Only entries about this alert.")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62, description="Entries older than this id (paging).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    return AuditPage.model_validate({"items": desk.audit_log(limit=limit, before_id=before_id, target=target)})
