"""registry: model versions get a description, tags and an archive time

Revision ID: registry_0003
Revises: registry_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_versions") as batch:
        batch.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("tags", sa.JSON, nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_versions") as batch:
        batch.drop_column("archived_at")
        batch.drop_column("tags")
        batch.drop_column("description")
