"""Shadow scores (challenger verdicts on live traffic) and drift snapshots, written by the stream.

Idempotent like 0001: the stream's own ``create_all`` (or 0001 on a fresh database,
which creates every table the store defines) may have created them already.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "shadow_scores" not in existing:
        op.create_table(
            "shadow_scores",
            sa.Column("transaction_id", sa.String(128), primary_key=True),
            sa.Column("model_version", sa.String(64), primary_key=True),
            sa.Column("score", sa.Float, nullable=False),
            sa.Column("decision", sa.String(8), nullable=False),
            sa.Column("threshold", sa.Float, nullable=False),
            sa.Column("champion_version", sa.String(64), nullable=False),
            sa.Column("champion_score", sa.Float, nullable=False),
            sa.Column("champion_decision", sa.String(8), nullable=False),
            sa.Column("event_time_ms", sa.BigInteger, nullable=False),
            sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "drift_snapshots" not in existing:
        op.create_table(
            "drift_snapshots",
            sa.Column("model_version", sa.String(64), primary_key=True),
            sa.Column("taken_at", sa.DateTime(timezone=True), primary_key=True),
            sa.Column("instance", sa.String(128), primary_key=True),
            sa.Column("window_rows", sa.Integer, nullable=False),
            sa.Column("psi", sa.JSON, nullable=False),
            sa.Column("flags", sa.JSON, nullable=False),
        )


def downgrade() -> None:
    # Nothing: like the scores and alerts (see 0001), the stream's data outlives the API's schema.
    pass
