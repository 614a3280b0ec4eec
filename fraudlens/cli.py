"""The ``fraudlens`` command line: the composition root's entry point.

Commands live in ``fraudlens/commands/<area>.py``; each module exposes
``register(app)``. Heavy libraries (xgboost, shap, transformers, kafka) are imported
inside command bodies so that ``fraudlens --help`` stays instant.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from fraudlens.settings import Settings, load_settings

app = typer.Typer(
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
    return _State.settings


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML settings file (else $FRAUDLENS_CONFIG); env vars override it.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
