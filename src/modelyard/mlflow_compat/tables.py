"""ORM rows of the MLflow adapter: what MLflow's API names that the registry does not hold."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class MlflowExperimentRow(Base):
    """MLflow's numeric experiment id for a registry experiment name (id 0, `Default`, is not
    stored: it is the registry's `default` experiment of every project)."""

    __tablename__ = "mlflow_experiments"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_mlflow_experiments_project_name"),)
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200))
    tags: Mapped[str] = mapped_column(sa.Text)  # JSON object
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class MlflowArtifactRow(Base):
    """A file of MLflow's artifact tree: its path under the artifact root and the registry
    artifact (sha256) that holds its bytes. The registry keeps one row per digest, so the
    tree of paths lives here."""

    __tablename__ = "mlflow_artifacts"
    project: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(1000), primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class MlflowLoggedModelRow(Base):
    """An MLflow 3 logged model (`mlflow.<flavor>.log_model`): its files live in the artifact
    tree under `<experiment>/models/<id>/artifacts`."""

    __tablename__ = "mlflow_logged_models"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(100), index=True)
    experiment_id: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(500))
    source_run_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True, index=True)
    model_type: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(40))
    tags: Mapped[str] = mapped_column(sa.Text)  # JSON object
    params: Mapped[str] = mapped_column(sa.Text)  # JSON object
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)


class MlflowVersionSourceRow(Base):
    """Where a model version registered through MLflow came from (its `source` URI) and the
    folder of the artifact tree it was made of (what `get-download-uri` answers)."""

    __tablename__ = "mlflow_version_sources"
    project: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(2000))
    prefix: Mapped[str] = mapped_column(sa.String(1000))
