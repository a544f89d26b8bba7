"""ORM rows of the training component; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class JobRow(Base):
    __tablename__ = "training_jobs"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    trainer: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    code_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    code_entrypoint: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    dataset_snapshot: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    cpu: Mapped[float] = mapped_column(sa.Float)  # per worker
    gpu: Mapped[int] = mapped_column(sa.Integer)  # per worker
    memory_mb: Mapped[int] = mapped_column(sa.Integer)  # per worker
    workers: Mapped[int] = mapped_column(sa.Integer)
    processes: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)  # None: default
    disk_mb: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)  # None: default
    priority: Mapped[int] = mapped_column(sa.Integer)
    timeout_s: Mapped[int] = mapped_column(sa.Integer)
    max_retries: Mapped[int] = mapped_column(sa.Integer)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)
    queued_at: Mapped[datetime] = mapped_column(sa.DateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    experiment: Mapped[str] = mapped_column(sa.String(100))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    message: Mapped[str] = mapped_column(sa.Text)
    checkpoint: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    model_version: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    progress: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    gpus: Mapped[list[int]] = mapped_column(sa.JSON)
    handle: Mapped[str | None] = mapped_column(sa.Text, nullable=True)  # the executor's handle
    # The API token of the running attempt (ids only), revoked when the attempt ends.
    token_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    token_user_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)


class CodeRow(Base):
    """A code package uploaded to a project (the bytes live once in the content store)."""

    __tablename__ = "training_code"
    project: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class QuotaRow(Base):
    __tablename__ = "training_quotas"
    project: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    max_cpu: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    max_gpu: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    max_jobs: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
