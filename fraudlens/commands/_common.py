"""What every command shares: turning a user's mistake into one clear line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer

EXIT_USAGE = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Print input/config errors (bad file, bad mapping, bad rows, bad bundle) as one line, exit 2.

    Only errors a person can fix by changing their input are caught; anything else is
    a bug and keeps its traceback.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def load_mapping(path: Path | None):  # noqa: ANN201 - avoids importing features at CLI start
    if path is None:
        return None
    from features.io import ColumnMapping

    return ColumnMapping.from_yaml(path)


def stderr_console():  # noqa: ANN201
    from rich.console import Console

    # Piped output (CI logs, files) still gets tables wide enough to read.
    return Console(stderr=True, file=sys.stderr, width=None if sys.stderr.isatty() else 120)
