"""training: the persistent job queue and per-project quotas

Revision ID: training_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "training_0001"
down_revision = None
branch_labels = ("training",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("trainer", sa.String(100), nullable=True),
        sa.Column("code_digest", sa.String(64), nullable=True),
        sa.Column("code_entrypoint", sa.String(300), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("dataset_snapshot", sa.String(100), nullable=True),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("cpu", sa.Float, nullable=False),
        sa.Column("gpu", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("workers", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("scheduled_at", sa.DateTime, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("experiment", sa.String(100), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("checkpoint", sa.String(64), nullable=True),
        sa.Column("model_version", sa.JSON, nullable=True),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("gpus", sa.JSON, nullable=False),
        sa.Column("handle", sa.Text, nullable=True),
        sa.Column("token_id", sa.String(40), nullable=True),
        sa.Column("token_user_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_training_jobs_project", "training_jobs", ["project"])
    op.create_index("ix_training_jobs_state", "training_jobs", ["state"])
    op.create_index("ix_training_jobs_created_at", "training_jobs", ["created_at"])
    op.create_table(
        "training_code",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "training_quotas",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("max_cpu", sa.Float, nullable=True),
        sa.Column("max_gpu", sa.Integer, nullable=True),
        sa.Column("max_jobs", sa.Integer, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("training_quotas")
    op.drop_table("training_code")
    op.drop_index("ix_training_jobs_created_at", table_name="training_jobs")
    op.drop_index("ix_training_jobs_state", table_name="training_jobs")
    op.drop_index("ix_training_jobs_project", table_name="training_jobs")
    op.drop_table("training_jobs")
