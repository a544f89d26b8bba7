"""hpo: studies and their trials (Optuna keeps its own storage beside these)

Revision ID: hpo_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "hpo_0001"
down_revision = None
branch_labels = ("hpo",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hpo_studies",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("experiment", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("best_model_version", sa.JSON, nullable=True),
        sa.UniqueConstraint("project", "name", name="uq_hpo_studies_project"),
    )
    op.create_index("ix_hpo_studies_project", "hpo_studies", ["project"])
    op.create_index("ix_hpo_studies_state", "hpo_studies", ["state"])
    op.create_table(
        "hpo_trials",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("study_id", sa.String(40),
                  sa.ForeignKey("hpo_studies.id", name="fk_hpo_trials_study_id_hpo_studies"),
                  nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("last_step", sa.Integer, nullable=True),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("optuna_trial_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_id"),
    )
    op.create_index("ix_hpo_trials_study_id", "hpo_trials", ["study_id"])
    op.create_index("ix_hpo_trials_state", "hpo_trials", ["state"])
    op.create_index("ix_hpo_trials_job_id", "hpo_trials", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_hpo_trials_job_id", table_name="hpo_trials")
    op.drop_index("ix_hpo_trials_state", table_name="hpo_trials")
    op.drop_index("ix_hpo_trials_study_id", table_name="hpo_trials")
    op.drop_table("hpo_trials")
    op.drop_index("ix_hpo_studies_state", table_name="hpo_studies")
    op.drop_index("ix_hpo_studies_project", table_name="hpo_studies")
    op.drop_table("hpo_studies")
