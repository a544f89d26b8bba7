"""ORM rows of serving; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class DeploymentRow(Base):
    __tablename__ = "serving_deployments"
    __table_args__ = (
        sa.UniqueConstraint("project", "name", name="uq_serving_deployments_name"),
    )
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(100))
    model_ref: Mapped[str] = mapped_column(sa.String(200))
    traffic: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    shadow_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    batching: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    rollback: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    pinned: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class DeploymentEventRow(Base):
    __tablename__ = "serving_deployment_events"
    __table_args__ = (
        sa.Index("ix_serving_deployment_events_deployment", "project", "deployment", "time"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    deployment: Mapped[str] = mapped_column(sa.String(100))
    time: Mapped[datetime] = mapped_column(sa.DateTime)
    kind: Mapped[str] = mapped_column(sa.String(40))
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
