"""Alembic migrations of the alert store (stream tables and API tables)."""
