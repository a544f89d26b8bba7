"""workflows: pipelines are code packages (the package digest and entry of a pipeline, of each
version and of each run)

Revision ID: workflows_0002
Revises: workflows_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "workflows_0002"
down_revision = "workflows_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: built-in pipelines have no package, and rows registered from `module:attr`
    # before packages existed keep none (they are refused at run with how to re-register).
    op.add_column("pipelines", sa.Column("package_digest", sa.String(64), nullable=True))
    op.add_column("pipelines", sa.Column("entry", sa.String(300), nullable=True))
    op.add_column("pipeline_versions",
                  sa.Column("package_digest", sa.String(64), nullable=True))
    op.add_column("pipeline_runs", sa.Column("package_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as b:
        b.drop_column("package_digest")
    with op.batch_alter_table("pipeline_versions") as b:
        b.drop_column("package_digest")
    with op.batch_alter_table("pipelines") as b:
        b.drop_column("entry")
        b.drop_column("package_digest")
