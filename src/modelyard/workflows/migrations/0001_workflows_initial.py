"""workflows: pipelines, versions, runs, step runs, triggers

Revision ID: workflows_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "workflows_0001"
down_revision = None
branch_labels = ("workflows",)
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.String(40), primary_key=True)


def _fk(col: str, table: str, ref: str) -> sa.Column:
    return sa.Column(col, sa.String(40),
                     sa.ForeignKey(f"{ref}.id", ondelete="CASCADE", name=f"fk_{table}_{col}_{ref}"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "pipelines", _id(),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("latest_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_pipelines_project"),
    )
    op.create_table(
        "pipeline_versions", _id(),
        _fk("pipeline_id", "pipeline_versions", "pipelines"),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("pipeline_id", "hash", name="uq_pipeline_versions_pipeline_id"),
    )
    op.create_table(
        "pipeline_runs", _id(),
        sa.Column("project", sa.String(100), nullable=False),
        _fk("pipeline_id", "pipeline_runs", "pipelines"),
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("version_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
    )
    op.create_index("ix_pipeline_runs_project", "pipeline_runs", ["project"])
    op.create_index("ix_pipeline_runs_pipeline_id", "pipeline_runs", ["pipeline_id"])
    op.create_index("ix_pipeline_runs_state", "pipeline_runs", ["state"])
    op.create_table(
        "pipeline_step_runs", _id(),
        _fk("run_id", "pipeline_step_runs", "pipeline_runs"),
        sa.Column("step", sa.String(120), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("inputs_digest", sa.String(64), nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("output_ref", sa.String(64), nullable=True),
        sa.Column("output_digest", sa.String(64), nullable=True),
        sa.Column("effects", sa.JSON, nullable=False),
        sa.Column("cached_from", sa.String(40), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("next_attempt_at", sa.DateTime, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("run_id", "step", name="uq_pipeline_step_runs_run_id"),
    )
    op.create_index("ix_pipeline_step_runs_cache_key", "pipeline_step_runs", ["cache_key"])
    op.create_table(
        "pipeline_triggers", _id(),
        sa.Column("project", sa.String(100), nullable=False),
        _fk("pipeline_id", "pipeline_triggers", "pipelines"),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cron", sa.String(100), nullable=True),
        sa.Column("event", sa.String(100), nullable=True),
        sa.Column("match", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("cursor", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_fire_at", sa.DateTime, nullable=True),
        sa.Column("last_fired_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_pipeline_triggers_project", "pipeline_triggers", ["project"])
    op.create_index("ix_pipeline_triggers_pipeline_id", "pipeline_triggers", ["pipeline_id"])
    op.create_index("ix_pipeline_triggers_event", "pipeline_triggers", ["event"])


def downgrade() -> None:
    op.drop_table("pipeline_triggers")
    op.drop_table("pipeline_step_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipeline_versions")
    op.drop_table("pipelines")
