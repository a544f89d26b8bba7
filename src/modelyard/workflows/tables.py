"""ORM rows of the workflow manager; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class PipelineRow(Base):
    __tablename__ = "pipelines"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_pipelines_project"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(100))
    # "builtin:<name>", "package", or (rows from before packages) a refused "module:attr"
    source: Mapped[str] = mapped_column(sa.String(300))
    package_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    entry: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    description: Mapped[str] = mapped_column(sa.Text)
    latest_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class PipelineVersionRow(Base):
    __tablename__ = "pipeline_versions"
    __table_args__ = (sa.UniqueConstraint("pipeline_id", "hash",
                                          name="uq_pipeline_versions_pipeline_id"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(sa.ForeignKey("pipelines.id", ondelete="CASCADE"))
    hash: Mapped[str] = mapped_column(sa.String(64))
    package_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    definition: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class RunRow(Base):
    __tablename__ = "pipeline_runs"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    pipeline_id: Mapped[str] = mapped_column(
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    pipeline: Mapped[str] = mapped_column(sa.String(100))
    version_hash: Mapped[str] = mapped_column(sa.String(64))
    package_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)  # its code
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    trigger: Mapped[str] = mapped_column(sa.String(200))
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean)
    no_cache: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    owner: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)  # engine driving it
    lease_until: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class StepRunRow(Base):
    __tablename__ = "pipeline_step_runs"
    __table_args__ = (sa.UniqueConstraint("run_id", "step", name="uq_pipeline_step_runs_run_id"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(sa.String(120))
    state: Mapped[str] = mapped_column(sa.String(20))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    inputs_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    cache_key: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    output: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    output_ref: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    output_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    effects: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    cached_from: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    # of the last failed attempt of a Python step: its traceback, the tail of what it printed
    traceback: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class TriggerRow(Base):
    __tablename__ = "pipeline_triggers"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    pipeline_id: Mapped[str] = mapped_column(
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # cron | event
    cron: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    event: Mapped[str | None] = mapped_column(sa.String(100), nullable=True, index=True)
    match: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    cursor: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # e.g. the last dataset version seen
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    no_cache: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    next_fire_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))
