"""ORM rows of the metrics store; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class MetricEventRow(Base):
    __tablename__ = "metrics_events"
    __table_args__ = (
        sa.Index("ix_metrics_events_project_time", "project", "time"),
        sa.Index("ix_metrics_events_request_id", "request_id"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    deployment: Mapped[str] = mapped_column(sa.String(100))
    model: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[int] = mapped_column(sa.Integer)
    time: Mapped[datetime] = mapped_column(sa.DateTime)
    latency_ms: Mapped[float] = mapped_column(sa.Float)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    label: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    confidence: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    request_id: Mapped[str] = mapped_column(sa.String(100))
    shadow: Mapped[bool] = mapped_column(sa.Boolean)
    input_summary: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class MetricOutboxRow(Base):
    """A chunk of a serving replica's events, packed column-wise (`_outbox.py`): one row per
    flush instead of one per event. `first_time`/`last_time` bound its events' times, so a
    query reads only the chunks that overlap its window."""

    __tablename__ = "metrics_outbox"
    __table_args__ = (sa.UniqueConstraint("batch_id", name="uq_metrics_outbox_batch_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    n_events: Mapped[int] = mapped_column(sa.Integer)
    first_time: Mapped[datetime] = mapped_column(sa.DateTime)
    last_time: Mapped[datetime] = mapped_column(sa.DateTime)
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)


class MetricFeedbackRow(Base):
    __tablename__ = "metrics_feedback"
    __table_args__ = (
        sa.UniqueConstraint("project", "request_id", name="uq_metrics_feedback_request_id"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    request_id: Mapped[str] = mapped_column(sa.String(100))
    label: Mapped[str] = mapped_column(sa.String(200))
    time: Mapped[datetime] = mapped_column(sa.DateTime)


class AlertRuleRow(Base):
    __tablename__ = "metrics_alert_rules"
    __table_args__ = (
        sa.UniqueConstraint("project", "name", name="uq_metrics_alert_rules_name"),
    )
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    state: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class AlertEventRow(Base):
    __tablename__ = "metrics_alert_events"
    __table_args__ = (
        sa.Index("ix_metrics_alert_events_rule_id", "rule_id", "time"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(
        sa.ForeignKey("metrics_alert_rules.id", ondelete="CASCADE",
                      name="fk_metrics_alert_events_rule_id_metrics_alert_rules"))
    time: Mapped[datetime] = mapped_column(sa.DateTime)
    from_state: Mapped[str] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    message: Mapped[str] = mapped_column(sa.Text)
