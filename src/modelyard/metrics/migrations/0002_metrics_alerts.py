"""metrics: alert rules and their state history

Revision ID: metrics_0002
Revises: metrics_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "metrics_0002"
down_revision = "metrics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metrics_alert_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("evaluated_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_metrics_alert_rules_name"),
    )
    op.create_table(
        "metrics_alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(40),
                  sa.ForeignKey("metrics_alert_rules.id", ondelete="CASCADE",
                                name="fk_metrics_alert_events_rule_id_metrics_alert_rules"),
                  nullable=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_metrics_alert_events_rule_id", "metrics_alert_events",
                    ["rule_id", "time"])


def downgrade() -> None:
    op.drop_index("ix_metrics_alert_events_rule_id", table_name="metrics_alert_events")
    op.drop_table("metrics_alert_events")
    op.drop_table("metrics_alert_rules")
