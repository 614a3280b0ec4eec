"""``python -m fraudlens`` runs the CLI."""

from fraudlens.cli import app

app()
