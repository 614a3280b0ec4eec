"""``/v1/models``: the registry's versions and each one's model card."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from api.deps import CtxDep, ModelReaderDep
from api.errors import NotFound
from api.schemas import DriftOut, ModelCard, ModelSummary
from api.text import CleanText

router = APIRouter(prefix="/v1/models", tags=["models"])


def _registry(ctx: CtxDep) -> Any:
    from detection.registry import ModelRegistry

    return ModelRegistry(ctx.settings.model.registry_dir)


def _champion(registry: Any) -> str | None:
    from detection.registry import RegistryError

    try:
        return str(registry.champion_version())
    except RegistryError:
        return None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {"value": data}


@router.get("", response_model=list[ModelSummary], summary="Registered model versions, oldest first")
def list_models(who: ModelReaderDep, ctx: CtxDep) -> list[ModelSummary]:
    from detection.bundle import MANIFEST_FILE

    registry = _registry(ctx)
    champion = _champion(registry)
    out = []
    for version in registry.list_versions():
        manifest = _read(registry.root / version / MANIFEST_FILE)
        created = manifest.get("created_at") or manifest.get("trained_at")
        out.append(ModelSummary(version=version, champion=version == champion,
                                created_at=None if created is None else str(created)))
    return out


@router.get("/{version}", response_model=ModelCard, summary="The model card: metrics, manifest, threshold")
def get_model(version: Annotated[CleanText, PathParam(max_length=128)], who: ModelReaderDep, ctx: CtxDep) -> ModelCard:
    from detection.bundle import MANIFEST_FILE, METRICS_FILE, THRESHOLD_FILE

    registry = _registry(ctx)
    if version not in registry.list_versions():  # also keeps the path inside the registry
        raise NotFound(f"model version {version!r} is not in the registry")
    root = registry.root / version
    return ModelCard(version=version, champion=version == _champion(registry), threshold=_read(root / THRESHOLD_FILE),
                     metrics=_read(root / METRICS_FILE), manifest=_read(root / MANIFEST_FILE),
                     drift=_drift(ctx, version))


def _drift(ctx: CtxDep, version: str) -> DriftOut | None:
    """The stream's latest drift snapshot of ``version`` (written by streaming.drift via the store)."""
    row = ctx.store.latest_drift(version)
    if row is None:
        return None
    taken_at = row["taken_at"]
    if taken_at.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        taken_at = taken_at.replace(tzinfo=UTC)
    return DriftOut(taken_at=taken_at, window_rows=row["window_rows"], psi=row["psi"], flags=row["flags"],
                    instance=row["instance"])
