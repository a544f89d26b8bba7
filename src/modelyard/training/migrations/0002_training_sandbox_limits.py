"""training: a job's sandbox limits beyond memory (processes, work-dir disk), per worker

Revision ID: training_0002
Revises: training_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "training_0002"
down_revision = "training_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: jobs queued before the upgrade read as the defaults (Resources).
    op.add_column("training_jobs", sa.Column("processes", sa.Integer, nullable=True))
    op.add_column("training_jobs", sa.Column("disk_mb", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("disk_mb")
        batch.drop_column("processes")
