"""Registry commands: ``fraudlens promote | rollback | models``.

``fraudlens promote VERSION`` runs the promotion gate (:mod:`detection.promotion`)
and promotes only when it approves. Exit codes: 0 approved and promoted, 1 refused
(the reasons are printed), 2 a usage error (unknown version, unreadable report or
data, unreachable database). ``fraudlens rollback`` returns to the champion before
the current one (see :mod:`detection.registry`); 0 done, 2 nothing to roll back to.

Every decision, approved or refused, and every rollback is written twice: to the
registry's append-only ``HISTORY.jsonl`` (champion changes only) and to the
append-only ``audit_log`` table of the alert store (``store.url``), as key id
``cli:<actor>`` with role ``admin``. The database is opened (and its tables
created if missing) *before* the gate runs, so an unreachable database stops the
command before anything changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudlens.commands._common import user_errors

EXIT_REFUSED = 1

ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who is doing this, for the audit log (default: $USER, else 'unknown').")
]


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or "unknown"


def _registry(settings: Any) -> Any:
    from detection.registry import ModelRegistry

    return ModelRegistry(settings.model.registry_dir)


def _audit_store(settings: Any) -> Any:
    """The alert store with the API's tables (audit_log among them) created if missing."""
    from api.db import setup_tables
    from streaming.store import SqlAlertStore

    store = SqlAlertStore(settings.store)
    store.setup()
    setup_tables(store.engine)
    return store


def _principal(actor: str) -> Any:
    from api.keys import Principal, Role

    # audit_log.key_id is 32 characters; the full name stays in the row's detail.
    return Principal(key_id=f"cli:{actor}"[:32], role=Role.ADMIN, name=actor)


def gate_and_promote(settings: Any, version: str, *, actor: str, data: Path | None = None,
                     progress: Any = None) -> Any:
    """Run the promotion gate on ``version``, promote it when approved, audit the decision either way.

    Returns the :class:`~detection.promotion.GateDecision`. Shared by ``fraudlens promote``
    and the demo, so the demo's champion goes through the same gate as a bank's.
    """
    from api.audit import record_audit
    from detection.promotion import evaluate_promotion

    registry = _registry(settings)
    store = _audit_store(settings)
    try:
        decision = evaluate_promotion(registry, version, data_override=data, n_threads=settings.model.n_threads,
                                      progress=progress)
        champion_before = decision.evidence.get("champion")
        detail = {"actor": actor, "approved": decision.approved, "champion_before": champion_before,
                  "reasons": decision.reasons, "evidence": decision.evidence}
        # One transaction: the audit row commits only if the promotion it records happened.
        with store.engine.begin() as conn:
            if decision.approved:
                registry.promote(version, actor=actor, reasons=decision.reasons, expect_champion=champion_before)
            record_audit(conn, _principal(actor), "promote" if decision.approved else "promote_refused", version,
                         detail)
    finally:
        store.close()
    return decision


def promote_command(
    version: Annotated[str, typer.Argument(help="The registered model version to promote, e.g. fl-3f9a0c1d2e4b.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="The validation report's data file at another path (its sha256 must match)."),
    ] = None,
    actor: ActorOpt = None,
) -> None:
    """Promote VERSION to champion if the promotion gate approves (exit 0), else print why and exit 1."""
    from fraudlens.cli import get_settings
    from fraudlens.commands._common import stderr_console
    from streaming.store import StoreError

    who = _actor(actor)
    with user_errors(StoreError):
        settings = get_settings()
        with stderr_console().status("running the promotion gate") as status:
            decision = gate_and_promote(settings, version, actor=who, data=data, progress=status.update)
    champion_before = decision.evidence.get("champion")
    if decision.approved:
        typer.echo(f"APPROVED: {version} is now the champion (was {champion_before or 'none'})")
    else:
        typer.echo(f"REFUSED: {version} was not promoted (champion stays {champion_before or 'none'})")
    for reason in decision.reasons:
        typer.echo(f"  - {reason}")
    if not decision.approved:
        raise typer.Exit(EXIT_REFUSED)


def rollback_command(actor: ActorOpt = None) -> None:
    """Return to the champion before the current one (repeat to go further back)."""
    from api.audit import record_audit
    from fraudlens.cli import get_settings
    from streaming.store import StoreError

    who = _actor(actor)
    with user_errors(StoreError):
        settings = get_settings()
        registry = _registry(settings)
        store = _audit_store(settings)
        try:
            with store.engine.begin() as conn:
                entry = registry.rollback(actor=who)
                record_audit(conn, _principal(who), "rollback", entry.version,
                             {"actor": who, "champion_before": entry.previous, "reasons": entry.reasons})
        finally:
            store.close()
    typer.echo(f"ROLLED BACK: {entry.version} is the champion again (was {entry.previous})")


def models_command() -> None:
    """List the registry's versions, oldest first: champion marker (*), creation time, validation report."""
    from fraudlens.cli import get_settings

    with user_errors():
        registry = _registry(get_settings())
        versions = registry.list_versions()
        try:
            champion = registry.champion_version()
        except ValueError:
            champion = None
    if not versions:
        typer.echo(f"no models in {registry.root}", err=True)
        return
    for version in versions:
        marker = "*" if version == champion else " "
        typer.echo(f"{marker} {version}  created {_created(registry.root / version)}  "
                   f"report: {_report_state(registry.validation_report_path(version))}")


def _created(bundle_dir: Path) -> str:
    import json

    try:
        return str(json.loads((bundle_dir / "manifest.json").read_text()).get("created_at", "?"))
    except (OSError, ValueError):
        return "?"


def _report_state(path: Path) -> str:
    """'none', or 'yes' with the report's checks, so a reader sees at a glance what the gate will say."""
    import json

    if not path.is_file():
        return "none"
    try:
        checks = json.loads(path.read_text()).get("checks") or {}
    except (OSError, ValueError, AttributeError):
        return "unreadable"

    def word(value: object) -> str:
        return "passed" if value is True else "FAILED" if value is False else "n/a"

    said = ", ".join(f"{name} {word(checks.get(name))}" for name in ("calibration", "stability", "reproducible"))
    return f"yes ({said})"


def register(app: typer.Typer) -> None:
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)
    app.command("models")(models_command)
