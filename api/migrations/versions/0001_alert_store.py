"""The alert store: scores and alerts (written by the stream), decisions, assignments, audit log, API keys.

Idempotent: a database the stream already created its tables in (``create_all``)
upgrades cleanly, since every table is created only if missing.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from api.db import guard_audit_log
    from api.db import metadata as api_metadata
    from streaming.store import metadata as store_metadata

    bind = op.get_bind()
    store_metadata.create_all(bind, checkfirst=True)
    api_metadata.create_all(bind, checkfirst=True)
    guard_audit_log(bind)


def downgrade() -> None:
    from api.db import metadata as api_metadata

    # Only the API's own tables: the stream's scores and alerts outlive the API.
    api_metadata.drop_all(op.get_bind(), checkfirst=True)
