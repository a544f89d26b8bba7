"""metrics: prediction events and ground-truth feedback

Revision ID: metrics_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "metrics_0001"
down_revision = None
branch_labels = ("metrics",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metrics_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("input_summary", sa.JSON, nullable=True),
    )
    op.create_index("ix_metrics_events_project_time", "metrics_events", ["project", "time"])
    op.create_index("ix_metrics_events_request_id", "metrics_events", ["request_id"])
    op.create_table(
        "metrics_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "request_id", name="uq_metrics_feedback_request_id"),
    )


def downgrade() -> None:
    op.drop_table("metrics_feedback")
    op.drop_index("ix_metrics_events_request_id", table_name="metrics_events")
    op.drop_index("ix_metrics_events_project_time", table_name="metrics_events")
    op.drop_table("metrics_events")
