"""registry: when an artifact's bytes were last uploaded to its project (retention counts from it)

Revision ID: registry_0002
Revises: registry_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("registry_artifacts", sa.Column("uploaded_at", sa.DateTime, nullable=True))
    op.execute("UPDATE registry_artifacts SET uploaded_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("registry_artifacts") as batch:
        batch.drop_column("uploaded_at")
