"""serving: deployments and their event history

Revision ID: serving_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "serving_0001"
down_revision = None
branch_labels = ("serving",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_deployments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("model_ref", sa.String(200), nullable=False),
        sa.Column("traffic", sa.JSON, nullable=True),
        sa.Column("shadow_version", sa.Integer, nullable=True),
        sa.Column("batching", sa.JSON, nullable=False),
        sa.Column("rollback", sa.JSON, nullable=True),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_serving_deployments_name"),
    )
    op.create_table(
        "serving_deployment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("deployment", sa.String(100), nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_serving_deployment_events_deployment", "serving_deployment_events",
                    ["project", "deployment", "time"])


def downgrade() -> None:
    op.drop_index("ix_serving_deployment_events_deployment",
                  table_name="serving_deployment_events")
    op.drop_table("serving_deployment_events")
    op.drop_table("serving_deployments")
