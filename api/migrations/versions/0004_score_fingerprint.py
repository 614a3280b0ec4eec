"""``scores.fingerprint``: the content each score was computed from.

The stream compares it with a later record carrying the same transaction id: the same
content is a replay (skipped), other content is dead-lettered ("duplicate transaction
id, different content"). Nullable: rows scored before it have none and count as the
same content. Idempotent like 0001 and 0002: the stream's own setup adds the column to
a store it created (``streaming.store``), and 0001 on a fresh database creates the
table with it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("scores")}
    if "fingerprint" not in columns:
        op.add_column("scores", sa.Column("fingerprint", sa.String(32), nullable=True))


def downgrade() -> None:
    # Nothing: like the scores themselves (see 0001), the stream's data outlives the API's schema.
    pass
