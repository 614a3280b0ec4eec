"""What every command shares: turning a user's mistake into one clear line and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from explain.redaction import redact

EXIT_USAGE = 2
#: What every command treats as a person's mistake (bad input, missing file, unreachable server).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)

log = logging.getLogger(__name__)


class _Secrets:
    #: The configured secrets of this invocation (URL passwords, keys), masked in every error line.
    values: set[str] = set()


def remember_secrets(values: set[str]) -> None:
    """Mask these values in every error line this process prints from now on."""
    _Secrets.values |= values


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on one line, with every URL credential and configured secret masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {redact(text, _Secrets.values)}"


@contextmanager
def user_errors(*also: type[BaseException]) -> Iterator[None]:
    """Print errors a person can act on as one stderr line and exit 2.

    Caught: ``ValueError`` (SchemaError, ColumnMappingError, BundleError, SettingsError…),
    ``OSError`` (missing files, unreachable servers) and the command's own ``also`` types.
    Anything else is a bug and keeps its traceback. The CLI's entry point applies the same
    rule to errors raised outside a command's own block (settings read on first use).
    """
    caught: tuple[type[BaseException], ...] = (*USER_ERRORS, *also)
    try:
        yield
    except caught as exc:
        log.debug("command failed", exc_info=True)
        typer.echo(error_line(exc), err=True)
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
