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


def redact_secrets(text: str) -> str:
    """``text`` with URL credentials and this invocation's configured secrets masked."""
    return redact(text, _Secrets.values)


def _store_unreachable(exc: BaseException) -> bool:
    # SQLAlchemy is looked up, not imported: `fraudlens --help` stays instant, and an error of
    # its kind can only exist once a command has imported it.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.OperationalError)


def is_user_error(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """A person's mistake (one line, exit 2) rather than a bug (a traceback)."""
    return isinstance(exc, (*USER_ERRORS, *also)) or _store_unreachable(exc)


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on one line, with every URL credential and configured secret masked."""
    if _store_unreachable(exc):
        # The driver's words (connection refused, authentication failed), not SQLAlchemy's SQL and help link;
        # the alert store is the only SQL database the commands use.
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        text = f"the alert store (store.url, FRAUDLENS_STORE__URL) failed: {reason}"
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {redact(text, _Secrets.values)}"


@contextmanager
def user_errors(*also: type[BaseException]) -> Iterator[None]:
    """Print errors a person can act on as one stderr line and exit 2.

    Caught: ``ValueError`` (SchemaError, ColumnMappingError, BundleError, SettingsError…),
    ``OSError`` (missing files, unreachable servers), SQLAlchemy's ``OperationalError`` (the
    alert store unreachable) and the command's own ``also`` types.
    Anything else is a bug and keeps its traceback. The CLI's entry point applies the same
    rule to errors raised outside a command's own block (settings read on first use).
    """
    try:
        yield
    except Exception as exc:
        if not is_user_error(exc, also):
            raise
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
