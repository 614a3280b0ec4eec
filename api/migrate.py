"""Run the Alembic migrations under ``api/migrations`` on an engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine, connection: object) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(engine, connection), revision)  # type: ignore[arg-type]


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision under ``api/migrations``: what :func:`upgrade` brings a database to."""
    from alembic.script import ScriptDirectory

    config = _config(None, None)  # type: ignore[arg-type]
    revision = ScriptDirectory.from_config(config).get_current_head()  # type: ignore[arg-type]
    assert revision is not None, "no migrations under api/migrations"
    return revision
