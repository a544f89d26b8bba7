"""ORM rows of the datasets component; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_datasets_project"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(50))
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    description: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    head_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class CommitRow(Base):
    __tablename__ = "dataset_commits"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_commits_dataset_id"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE", name="fk_dataset_commits_dataset_id_datasets"))
    version: Mapped[int] = mapped_column(sa.Integer)
    lance_version: Mapped[int] = mapped_column(sa.Integer)
    operation: Mapped[str] = mapped_column(sa.String(20))
    message: Mapped[str] = mapped_column(sa.Text)
    author: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    tags: Mapped[list[str]] = mapped_column(sa.JSON)
    row_count: Mapped[int] = mapped_column(sa.Integer)
    rows_added: Mapped[int] = mapped_column(sa.Integer)
    rows_removed: Mapped[int] = mapped_column(sa.Integer)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    stats: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    collected_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class SnapshotRow(Base):
    __tablename__ = "dataset_snapshots"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "commit_id", "hash",
                                          name="uq_dataset_snapshots_commit_hash"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE", name="fk_dataset_snapshots_dataset_id_datasets"))
    commit_id: Mapped[str] = mapped_column(
        sa.ForeignKey("dataset_commits.id", ondelete="CASCADE",
                      name="fk_dataset_snapshots_commit_id_dataset_commits"), index=True)
    hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20))
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    seed: Mapped[int] = mapped_column(sa.Integer)
    fractions: Mapped[dict[str, float]] = mapped_column(sa.JSON)
    label_names: Mapped[list[str]] = mapped_column(sa.JSON)
    split_sizes: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    splits_key: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))
