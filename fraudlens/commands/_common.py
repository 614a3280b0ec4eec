"""What every command shares: turning a user's mistake into one clear line and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

EXIT_USAGE = 2

log = logging.getLogger(__name__)


@contextmanager
def user_errors(*also: type[BaseException]) -> Iterator[None]:
    """Print errors a person can act on as one stderr line and exit 2.

    Caught: ``ValueError`` (SchemaError, ColumnMappingError, BundleError, settings
    validation…), ``OSError`` (missing files, unreachable servers) and the command's
    own ``also`` types. Anything else is a bug and keeps its traceback.
    """
    caught: tuple[type[BaseException], ...] = (ValueError, OSError, *also)
    try:
        yield
    except caught as exc:
        log.debug("command failed", exc_info=True)
        typer.echo(f"error: {' '.join(str(exc).split()) or type(exc).__name__}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def load_mapping(path: Path | None):  # noqa: ANN201 - avoids importing features at CLI start
    if path is None:
        return None
    from features.io import ColumnMapping

    return ColumnMapping.from_yaml(path)


def stderr_console():  # noqa: ANN201
    from rich.console import Console

    # Piped output (CI logs, files) still gets tables wide enough to read.
    return Console(stderr=True, file=sys.stderr, width=None if sys.stderr.isatty() else 120)
