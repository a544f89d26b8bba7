"""registry: experiments, runs, params, tags, metric series, artifacts, models, aliases, lineage

Revision ID: registry_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None


def _fk(table: str, col: str, ref: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{ref}.id", ondelete="CASCADE", name=f"fk_{table}_{col}_{ref}")


def upgrade() -> None:
    op.create_table(
        "registry_experiments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_registry_experiments_project_name"),
    )
    op.create_table(
        "registry_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("experiment_id", sa.String(40),
                  _fk("registry_runs", "experiment_id", "registry_experiments"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(100), nullable=True),
        sa.Column("code_hash", sa.String(100), nullable=True),
        sa.Column("dataset_snapshot", sa.String(100), nullable=True),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_registry_runs_project_created_at", "registry_runs", ["project", "created_at"])
    op.create_index("ix_registry_runs_experiment_id", "registry_runs", ["experiment_id"])
    op.create_index("ix_registry_runs_job_id", "registry_runs", ["job_id"])
    op.create_table(
        "registry_params",
        sa.Column("run_id", sa.String(40), _fk("registry_params", "run_id", "registry_runs"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("num", sa.Float, nullable=True),
    )
    op.create_index("ix_registry_params_key_num", "registry_params", ["key", "num"])
    op.create_table(
        "registry_tags",
        sa.Column("run_id", sa.String(40), _fk("registry_tags", "run_id", "registry_runs"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(5000), nullable=False),
    )
    op.create_table(
        "registry_metrics",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("run_id", sa.String(40), _fk("registry_metrics", "run_id", "registry_runs"),
                  nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
    )
    op.create_index("ix_registry_metrics_run_id_key_step", "registry_metrics",
                    ["run_id", "key", "step"])
    op.create_table(
        "registry_latest_metrics",
        sa.Column("run_id", sa.String(40),
                  _fk("registry_latest_metrics", "run_id", "registry_runs"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
    )
    op.create_index("ix_registry_latest_metrics_key_value", "registry_latest_metrics",
                    ["key", "value"])
    op.create_table(
        "registry_artifacts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("project", "digest", name="uq_registry_artifacts_project_digest"),
    )
    op.create_index("ix_registry_artifacts_digest", "registry_artifacts", ["digest"])
    op.create_table(
        "registry_models",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("project", "name", name="uq_registry_models_project_name"),
    )
    op.create_table(
        "registry_versions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("model_id", sa.String(40),
                  _fk("registry_versions", "model_id", "registry_models"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("framework", sa.String(100), nullable=False),
        sa.Column("signature", sa.JSON, nullable=False),
        sa.Column("preprocessing", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("job_id", sa.String(100), nullable=True),
        sa.Column("dataset_snapshot_id", sa.String(100), nullable=True),
        sa.Column("code_hash", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_registry_versions_model_id_version"),
    )
    op.create_index("ix_registry_versions_model_id", "registry_versions", ["model_id"])
    op.create_table(
        "registry_version_artifacts",
        sa.Column("version_id", sa.String(40),
                  _fk("registry_version_artifacts", "version_id", "registry_versions"),
                  primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_registry_version_artifacts_digest", "registry_version_artifacts", ["digest"])
    op.create_table(
        "registry_aliases",
        sa.Column("model_id", sa.String(40), _fk("registry_aliases", "model_id", "registry_models"),
                  primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "registry_alias_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(40),
                  _fk("registry_alias_moves", "model_id", "registry_models"), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("moved_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_registry_alias_moves_model_id", "registry_alias_moves", ["model_id"])
    op.create_table(
        "registry_lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("src_kind", sa.String(40), nullable=False),
        sa.Column("src_id", sa.String(200), nullable=False),
        sa.Column("dst_kind", sa.String(40), nullable=False),
        sa.Column("dst_id", sa.String(200), nullable=False),
        sa.Column("relation", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "src_kind", "src_id", "dst_kind", "dst_id", "relation",
                            name="uq_registry_lineage_edges_project"),
    )
    op.create_index("ix_registry_lineage_edges_src", "registry_lineage_edges",
                    ["project", "src_kind", "src_id"])
    op.create_index("ix_registry_lineage_edges_dst", "registry_lineage_edges",
                    ["project", "dst_kind", "dst_id"])


def downgrade() -> None:
    for table in ("registry_lineage_edges", "registry_alias_moves", "registry_aliases",
                  "registry_version_artifacts", "registry_versions", "registry_models",
                  "registry_artifacts", "registry_latest_metrics", "registry_metrics",
                  "registry_tags", "registry_params", "registry_runs", "registry_experiments"):
        op.drop_table(table)
