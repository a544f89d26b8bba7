"""ORM rows of the HPO component; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class StudyRow(Base):
    __tablename__ = "hpo_studies"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_hpo_studies_project"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    experiment: Mapped[str] = mapped_column(sa.String(100))
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    message: Mapped[str] = mapped_column(sa.Text)
    best_model_version: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class TrialRow(Base):
    __tablename__ = "hpo_trials"
    __table_args__ = (sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_id"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    study_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("hpo_studies.id", name="fk_hpo_trials_study_id_hpo_studies"),
        index=True)
    number: Mapped[int] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    value: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    last_step: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True, index=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    optuna_trial_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    message: Mapped[str] = mapped_column(sa.Text)
