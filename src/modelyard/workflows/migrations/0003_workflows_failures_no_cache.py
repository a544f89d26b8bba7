"""workflows: a failed step keeps its traceback and the tail of its output; runs and triggers
can skip the step cache

Revision ID: workflows_0003
Revises: workflows_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "workflows_0003"
down_revision = "workflows_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_step_runs", sa.Column("traceback", sa.Text, nullable=True))
    op.add_column("pipeline_step_runs", sa.Column("log_tail", sa.Text, nullable=True))
    op.add_column("pipeline_runs", sa.Column("no_cache", sa.Boolean, nullable=False,
                                             server_default=sa.false()))
    op.add_column("pipeline_triggers", sa.Column("no_cache", sa.Boolean, nullable=False,
                                                 server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_triggers") as b:
        b.drop_column("no_cache")
    with op.batch_alter_table("pipeline_runs") as b:
        b.drop_column("no_cache")
    with op.batch_alter_table("pipeline_step_runs") as b:
        b.drop_column("log_tail")
        b.drop_column("traceback")
