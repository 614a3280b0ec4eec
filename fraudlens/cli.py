"""The ``fraudlens`` command line: the composition root's entry point.

Commands live in ``fraudlens/commands/<area>.py``; each module exposes
``register(app)``. Heavy libraries (xgboost, shap, transformers, kafka) are imported
inside command bodies so that ``fraudlens --help`` stays instant.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from explain.redaction import install_log_redaction, secret_values
from fraudlens.commands._common import (
    EXIT_USAGE,
    error_line,
    is_user_error,
    redact_secrets,
    remember_secrets,
)
from fraudlens.settings import Settings, load_settings


class _Cli(typer.Typer):
    """The command group; a person's mistake raised anywhere in a command is one ``error:`` line and exit 2.

    Commands wrap their own work in ``user_errors()``; this catches the same errors raised
    outside such a block (settings read on first use by ``get_settings``), so there is one
    rule and one format (``_common.error_line``: one line, secrets masked) for all of them.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not is_user_error(exc):
                # A bug keeps its traceback (exit 1, as Python's own), with secrets masked like every other line.
                sys.stderr.write(redact_secrets("".join(traceback.format_exception(exc))))
                raise SystemExit(1) from None
            logging.getLogger(__name__).debug("command failed", exc_info=True)
            print(error_line(exc), file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None


app = _Cli(
    name="fraudlens",
    help="Real-time card-fraud detection with explanations investigators and validators can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

#: Command modules, registered in this order (help lists them alphabetically).
COMMAND_MODULES = ("data", "models", "explain", "streaming", "api", "demo", "config", "registry", "validation")


class _State:
    settings: Settings | None = None
    config_file: Path | None = None


def get_settings() -> Settings:
    """The settings for this invocation, read once from env + optional config file."""
    if _State.settings is None:
        _State.settings = load_settings(_State.config_file)
        secrets = secret_values(_State.settings)
        remember_secrets(secrets)
        install_log_redaction(secrets)
    return _State.settings


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML settings file (else $FRAUDLENS_CONFIG); env vars override it.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # URL credentials are masked in every log line from the start; get_settings adds the configured secrets.
    install_log_redaction()
    _State.config_file = config
    _State.settings = None


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"fraudlens.commands.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"fraudlens.commands.{_name}":
            raise
        continue
    _module.register(app)
