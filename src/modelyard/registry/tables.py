"""ORM rows of the registry; nothing outside the store modules uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class ExperimentRow(Base):
    __tablename__ = "registry_experiments"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_registry_experiments_project_name"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class RunRow(Base):
    __tablename__ = "registry_runs"
    __table_args__ = (sa.Index("ix_registry_runs_project_created_at", "project", "created_at"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    experiment_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_experiments.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    job_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True, index=True)
    code_hash: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    dataset_snapshot: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    user: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class ParamRow(Base):
    __tablename__ = "registry_params"
    __table_args__ = (sa.Index("ix_registry_params_key_num", "key", "num"),)
    run_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(250), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)  # JSON of the original value
    text: Mapped[str] = mapped_column(sa.String(500))  # the value as text, for filters
    num: Mapped[float | None] = mapped_column(sa.Float, nullable=True)  # numeric values only


class TagRow(Base):
    __tablename__ = "registry_tags"
    run_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(250), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(5000))


class MetricRow(Base):
    __tablename__ = "registry_metrics"
    __table_args__ = (sa.Index("ix_registry_metrics_run_id_key_step", "run_id", "key", "step"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("registry_runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(250))
    step: Mapped[int] = mapped_column(sa.BigInteger)
    value: Mapped[float] = mapped_column(sa.Float)
    time: Mapped[float] = mapped_column(sa.Float)  # seconds since the epoch


class LatestMetricRow(Base):
    """The newest point of each series: what search filters and sorts on."""

    __tablename__ = "registry_latest_metrics"
    __table_args__ = (sa.Index("ix_registry_latest_metrics_key_value", "key", "value"),)
    run_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(250), primary_key=True)
    step: Mapped[int] = mapped_column(sa.BigInteger)
    value: Mapped[float] = mapped_column(sa.Float)
    time: Mapped[float] = mapped_column(sa.Float)


class ArtifactRow(Base):
    __tablename__ = "registry_artifacts"
    __table_args__ = (sa.UniqueConstraint("project", "digest", name="uq_registry_artifacts_project_digest"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    digest: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    media_type: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    # The last upload of these bytes to the project: a re-upload means someone is about to use
    # them, so garbage collection's retention counts from here, not from the first upload.
    uploaded_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class ModelRow(Base):
    __tablename__ = "registry_models"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_registry_models_project_name"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(100))
    latest_version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class VersionRow(Base):
    __tablename__ = "registry_versions"
    __table_args__ = (sa.UniqueConstraint("model_id", "version", name="uq_registry_versions_model_id_version"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    model_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    artifacts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    framework: Mapped[str] = mapped_column(sa.String(100))
    signature: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    preprocessing: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    run_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    dataset_snapshot_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    code_hash: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    tags: Mapped[dict[str, str] | None] = mapped_column(sa.JSON, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class VersionArtifactRow(Base):
    """Which artifact digests a version holds: what artifact GC must keep."""

    __tablename__ = "registry_version_artifacts"
    version_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_versions.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(500), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64), index=True)


class AliasRow(Base):
    __tablename__ = "registry_aliases"
    model_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer)


class AliasMoveRow(Base):
    __tablename__ = "registry_alias_moves"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(
        sa.ForeignKey("registry_models.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(sa.String(100))
    from_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    actor: Mapped[str] = mapped_column(sa.String(100))
    moved_at: Mapped[datetime] = mapped_column(sa.DateTime)


class EdgeRow(Base):
    __tablename__ = "registry_lineage_edges"
    __table_args__ = (
        sa.UniqueConstraint("project", "src_kind", "src_id", "dst_kind", "dst_id", "relation",
                            name="uq_registry_lineage_edges_project"),
        sa.Index("ix_registry_lineage_edges_src", "project", "src_kind", "src_id"),
        sa.Index("ix_registry_lineage_edges_dst", "project", "dst_kind", "dst_id"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    src_kind: Mapped[str] = mapped_column(sa.String(40))
    src_id: Mapped[str] = mapped_column(sa.String(200))
    dst_kind: Mapped[str] = mapped_column(sa.String(40))
    dst_id: Mapped[str] = mapped_column(sa.String(200))
    relation: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
