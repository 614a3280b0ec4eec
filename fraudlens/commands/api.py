"""API commands: ``fraudlens serve``, ``fraudlens keys create``, ``fraudlens labels export``.

FastAPI, SQLAlchemy and the model load inside the command bodies so ``fraudlens --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fraudlens.commands._common import user_errors

keys_app = typer.Typer(help="API keys (stored hashed; a key is shown once).", no_args_is_help=True)
labels_app = typer.Typer(help="Investigator decisions as training labels.", no_args_is_help=True)
db_app = typer.Typer(help="The alert store's schema (Alembic migrations).", no_args_is_help=True)

EXIT_USAGE = 2


def _api_settings(settings: Any) -> Any:
    return settings.api


def _open_store(settings: Any) -> Any:
    """The alert store, connected; an unusable or unreachable one is one ``error:`` line naming the setting."""
    from sqlalchemy.exc import SQLAlchemyError

    from explain.redaction import redact_url
    from streaming.store import SqlAlertStore, StoreError

    store = SqlAlertStore(settings.store)
    with user_errors(StoreError):
        try:
            store.setup()  # connects: creates missing tables
        except SQLAlchemyError as exc:
            store.close()
            # The driver's own words (connection refused, auth failed), not SQLAlchemy's SQL and help link.
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise StoreError(f"cannot reach the alert store at {redact_url(settings.store.url)} "
                             f"(store.url, FRAUDLENS_STORE__URL): {reason}") from None
    return store


def _engine(settings: Any) -> Any:
    from api.db import setup_tables

    store = _open_store(settings)
    setup_tables(store.engine)
    return store


def serve_command(
    host: Annotated[str | None, typer.Option("--host", help="Interface to bind (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: api.port).")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="Model bundle directory (default: the champion).")] = None,
) -> None:
    """Serve the REST API and the investigator pages."""
    import uvicorn

    from api import create_app
    from explain.redaction import install_log_redaction, secret_values
    from fraudlens.cli import get_settings

    settings = get_settings()
    api = _api_settings(settings)
    updates: dict[str, Any] = {k: v for k, v in {"host": host, "port": port, "model_path": model}.items() if v}
    api = api.model_copy(update=updates)
    if api.model_path is not None and not Path(api.model_path).is_dir():
        typer.echo(f"error: model bundle {api.model_path} does not exist", err=True)
        raise typer.Exit(EXIT_USAGE)
    # Fail before serving: an unreachable store would otherwise end the app's startup in a long traceback.
    _open_store(settings).close()
    app = create_app(settings, api)
    typer.echo(f"fraudlens API on http://{api.host}:{api.port}/  (pages: /ui/alerts, OpenAPI: /openapi.json)", err=True)
    # uvicorn's own access log would print raw paths and queries; api.access logs route templates.
    config = uvicorn.Config(app, host=api.host, port=api.port, log_level="info", access_log=False)
    # uvicorn has just installed its own handlers: they mask secrets too.
    install_log_redaction(secret_values(settings), loggers=("uvicorn", "uvicorn.error", "uvicorn.access"))
    uvicorn.Server(config).run()


def keys_create(
    role: Annotated[str, typer.Option("--role", help="scorer | investigator | validator | admin")],
    name: Annotated[str | None, typer.Option("--name", help="Who holds the key (shown in the audit log).")] = None,
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    from api.keys import KeyStore, Role
    from fraudlens.cli import get_settings

    try:
        role_value = Role(role)
    except ValueError:
        typer.echo(f"error: --role must be one of {', '.join(r.value for r in Role)}, got {role!r}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    store = _engine(get_settings())
    try:
        plaintext, principal = KeyStore(store.engine).create(role_value, name=name)
    finally:
        store.close()
    typer.echo(f"created key {principal.key_id} ({principal.role.value}, {principal.name}); "
               "it is shown only now:", err=True)
    typer.echo(plaintext)


def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id printed at creation.")]) -> None:
    """Revoke a key (its page sessions end too)."""
    from api.keys import KeyStore
    from fraudlens.cli import get_settings

    store = _engine(get_settings())
    try:
        found = KeyStore(store.engine).revoke(key_id)
    finally:
        store.close()
    if not found:
        typer.echo(f"error: no key {key_id!r}", err=True)
        raise typer.Exit(EXIT_USAGE)
    typer.echo(f"revoked {key_id}", err=True)


def labels_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .csv or .parquet.")] = Path("runs/labels.csv"),
) -> None:
    """Export investigator decisions (confirmed_fraud=1, legitimate=0) as labels for training."""
    from api.labels import export_labels
    from fraudlens.cli import get_settings

    if out.suffix not in (".csv", ".parquet"):
        typer.echo(f"error: --out must end in .csv or .parquet, got {out}", err=True)
        raise typer.Exit(EXIT_USAGE)
    store = _engine(get_settings())
    try:
        count = export_labels(store.engine, out)
    finally:
        store.close()
    typer.echo(f"wrote {count} labels to {out}", err=True)


def db_upgrade() -> None:
    """Create or upgrade every table of the alert store (idempotent; run before a deployment)."""
    from sqlalchemy import create_engine

    from api.migrate import current, upgrade
    from fraudlens.cli import get_settings

    store = _engine(get_settings())  # validates the URL and creates the SQLite folder
    store.close()
    engine = create_engine(get_settings().store.url)
    try:
        upgrade(engine)
        typer.echo(f"alert store at revision {current(engine)}", err=True)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    keys_app.command("create")(keys_create)
    keys_app.command("revoke")(keys_revoke)
    labels_app.command("export")(labels_export)
    app.add_typer(keys_app, name="keys")
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(labels_app, name="labels")
    app.add_typer(db_app, name="db")
