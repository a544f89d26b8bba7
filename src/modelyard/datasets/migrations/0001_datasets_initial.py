"""datasets: datasets, dataset_commits, dataset_snapshots

Revision ID: datasets_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "datasets_0001"
down_revision = None
branch_labels = ("datasets",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("head_version", sa.Integer, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("project", "name", name="uq_datasets_project"),
    )
    op.create_index("ix_datasets_project", "datasets", ["project"])
    op.create_table(
        "dataset_commits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("dataset_id", sa.String(40),
                  sa.ForeignKey("datasets.id", ondelete="CASCADE",
                                name="fk_dataset_commits_dataset_id_datasets"),
                  nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lance_version", sa.Integer, nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("rows_added", sa.Integer, nullable=False),
        sa.Column("rows_removed", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("collected_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_commits_dataset_id"),
    )
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("dataset_id", sa.String(40),
                  sa.ForeignKey("datasets.id", ondelete="CASCADE",
                                name="fk_dataset_snapshots_dataset_id_datasets"),
                  nullable=False),
        sa.Column("commit_id", sa.String(40),
                  sa.ForeignKey("dataset_commits.id", ondelete="CASCADE",
                                name="fk_dataset_snapshots_commit_id_dataset_commits"),
                  nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("fractions", sa.JSON, nullable=False),
        sa.Column("label_names", sa.JSON, nullable=False),
        sa.Column("split_sizes", sa.JSON, nullable=False),
        sa.Column("splits_key", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("dataset_id", "hash", name="uq_dataset_snapshots_dataset_id"),
    )
    op.create_index("ix_dataset_snapshots_commit_id", "dataset_snapshots", ["commit_id"])


def downgrade() -> None:
    op.drop_table("dataset_snapshots")
    op.drop_table("dataset_commits")
    op.drop_table("datasets")
