"""Alembic environment: run against the connection ``api.migrate.upgrade`` hands in."""

from __future__ import annotations

from alembic import context

from api.db import metadata as api_metadata
from streaming.store import metadata as store_metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=[store_metadata, api_metadata])
with context.begin_transaction():
    context.run_migrations()
