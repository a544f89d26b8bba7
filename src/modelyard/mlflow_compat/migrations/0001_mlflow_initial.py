"""mlflow: experiment ids, the artifact tree, logged models, model version sources

Revision ID: mlflow_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "mlflow_0001"
down_revision = None
branch_labels = ("mlflow_compat",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_experiments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_mlflow_experiments_project_name"),
    )
    op.create_table(
        "mlflow_artifacts",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "mlflow_logged_models",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("experiment_id", sa.String(20), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("source_run_id", sa.String(40), nullable=True),
        sa.Column("model_type", sa.String(200), nullable=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_mlflow_logged_models_project", "mlflow_logged_models", ["project"])
    op.create_index("ix_mlflow_logged_models_source_run_id", "mlflow_logged_models",
                    ["source_run_id"])
    op.create_table(
        "mlflow_version_sources",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(2000), nullable=False),
        sa.Column("prefix", sa.String(1000), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlflow_version_sources")
    op.drop_table("mlflow_logged_models")
    op.drop_table("mlflow_artifacts")
    op.drop_table("mlflow_experiments")
