"""metrics: packed chunks of serving replicas' prediction events

Revision ID: metrics_0003
Revises: metrics_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "metrics_0003"
down_revision = "metrics_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metrics_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("n_events", sa.Integer, nullable=False),
        sa.Column("first_time", sa.DateTime, nullable=False),
        sa.Column("last_time", sa.DateTime, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("batch_id", name="uq_metrics_outbox_batch_id"),
    )


def downgrade() -> None:
    op.drop_table("metrics_outbox")
