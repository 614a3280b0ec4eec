"""``fraudlens config``: the effective settings, each with its environment variable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from pydantic import BaseModel, SecretStr

from explain.redaction import redact


def settings_rows(model: BaseModel, prefix: str = "FRAUDLENS_") -> Iterator[tuple[str, Any, str]]:
    """(environment variable, effective value, description) for every leaf setting; keys and URL passwords masked."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from settings_rows(value, f"{prefix}{name.upper()}__")
        else:
            # Keys are never shown; a URL is shown with its password masked (redis://:***@host).
            shown = "***" if isinstance(value, SecretStr) else redact(value) if isinstance(value, str) else value
            yield f"{prefix}{name.upper()}", shown, field.description or ""


def config() -> None:
    """Print every setting, its effective value (env > config file > default) and its variable."""
    from rich.table import Table

    from fraudlens.cli import get_settings
    from fraudlens.commands._common import stderr_console

    table = Table("variable", "value", "what it does", show_lines=False)
    for variable, value, description in settings_rows(get_settings()):
        table.add_row(variable, str(value), description)
    stderr_console().print(table)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
