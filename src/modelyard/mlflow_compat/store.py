"""Persistence of the MLflow adapter: experiment ids, the artifact tree, logged models.

Every method is one transaction; rows never leave this module.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.mlflow_compat.models import ArtifactFile, Experiment, LoggedModel
from modelyard.mlflow_compat.tables import (
    MlflowArtifactRow,
    MlflowExperimentRow,
    MlflowLoggedModelRow,
    MlflowVersionSourceRow,
)


def _experiment(row: MlflowExperimentRow) -> Experiment:
    return Experiment(id=str(row.id), name=row.name, tags=json.loads(row.tags),
                      created_at=row.created_at)


def _logged(row: MlflowLoggedModelRow) -> LoggedModel:
    return LoggedModel(id=row.id, project=row.project, experiment_id=row.experiment_id,
                       name=row.name, source_run_id=row.source_run_id, model_type=row.model_type,
                       status=row.status, tags=json.loads(row.tags), params=json.loads(row.params),
                       created_at=row.created_at, updated_at=row.updated_at)


class MlflowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # experiments
    def experiment_by_name(self, project: str, name: str, create: bool,
                           tags: dict[str, str] | None = None) -> Experiment:
        """The id of `name`; created when missing and `create` (concurrent creators agree)."""
        for _ in range(2):
            with self.db.session() as s:
                row = s.scalar(sa.select(MlflowExperimentRow).where(
                    MlflowExperimentRow.project == project, MlflowExperimentRow.name == name))
                if row is not None:
                    return _experiment(row)
            if not create:
                raise NotFound(f"experiment {name!r} does not exist in project {project!r}",
                               {"experiment": name})
            try:
                with self.db.session() as s:
                    row = MlflowExperimentRow(project=project, name=name,
                                              tags=json.dumps(tags or {}), created_at=utcnow())
                    s.add(row)
                    s.flush()
                    return _experiment(row)
            except AlreadyExists:  # created concurrently: read it again
                continue
        raise AlreadyExists(f"experiment {name!r} could not be created; retry")

    def experiment_by_id(self, project: str, experiment_id: int) -> Experiment:
        with self.db.session() as s:
            row = s.get(MlflowExperimentRow, experiment_id)
            if row is None or row.project != project:
                raise NotFound(f"experiment {experiment_id} does not exist in project "
                               f"{project!r}", {"experiment_id": str(experiment_id)})
            return _experiment(row)

    def list_experiments(self, project: str, offset: int, limit: int) -> list[Experiment]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(MlflowExperimentRow).where(
                MlflowExperimentRow.project == project).order_by(MlflowExperimentRow.id)
                .offset(offset).limit(limit)).all()
            return [_experiment(r) for r in rows]

    def set_experiment_tag(self, project: str, experiment_id: int, key: str, value: str) -> None:
        with self.db.session() as s:
            row = s.get(MlflowExperimentRow, experiment_id, with_for_update=True)
            if row is None or row.project != project:
                raise NotFound(f"experiment {experiment_id} does not exist in project {project!r}")
            row.tags = json.dumps({**json.loads(row.tags), key: value})

    # the artifact tree
    def put_file(self, project: str, path: str, digest: str, size: int) -> None:
        with self.db.session() as s:
            row = s.get(MlflowArtifactRow, (project, path))
            if row is None:
                s.add(MlflowArtifactRow(project=project, path=path, digest=digest, size=size,
                                        updated_at=utcnow()))
            else:  # MLflow overwrites a file logged again under the same path
                row.digest, row.size, row.updated_at = digest, size, utcnow()

    def get_file(self, project: str, path: str) -> ArtifactFile | None:
        with self.db.session() as s:
            row = s.get(MlflowArtifactRow, (project, path))
            return ArtifactFile(path=row.path, digest=row.digest, size=row.size) if row else None

    def files_under(self, project: str, prefix: str, limit: int) -> list[ArtifactFile]:
        """Files whose path starts with `prefix/` (every file with an empty prefix), by path."""
        q = sa.select(MlflowArtifactRow).where(MlflowArtifactRow.project == project)
        if prefix:
            q = q.where(MlflowArtifactRow.path.startswith(prefix + "/", autoescape=True))
        with self.db.session() as s:
            rows = s.scalars(q.order_by(MlflowArtifactRow.path).limit(limit)).all()
            return [ArtifactFile(path=r.path, digest=r.digest, size=r.size) for r in rows]

    # logged models
    def create_logged_model(self, project: str, experiment_id: str, name: str,
                            source_run_id: str | None, model_type: str | None,
                            tags: dict[str, str], params: dict[str, str]) -> LoggedModel:
        now = utcnow()
        row = MlflowLoggedModelRow(
            id=new_id("m"), project=project, experiment_id=experiment_id, name=name,
            source_run_id=source_run_id, model_type=model_type, status="LOGGED_MODEL_PENDING",
            tags=json.dumps(tags), params=json.dumps(params), created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(row)
            s.flush()
            return _logged(row)

    def get_logged_model(self, project: str, model_id: str) -> LoggedModel:
        with self.db.session() as s:
            row = s.get(MlflowLoggedModelRow, model_id)
            if row is None or row.project != project:
                raise NotFound(f"logged model {model_id!r} does not exist in project "
                               f"{project!r}", {"model_id": model_id})
            return _logged(row)

    def update_logged_model(self, project: str, model_id: str, status: str | None = None,
                            tags: dict[str, str] | None = None,
                            params: dict[str, str] | None = None) -> LoggedModel:
        with self.db.session() as s:
            row = s.get(MlflowLoggedModelRow, model_id, with_for_update=True)
            if row is None or row.project != project:
                raise NotFound(f"logged model {model_id!r} does not exist in project "
                               f"{project!r}", {"model_id": model_id})
            if status:
                row.status = status
            if tags:
                row.tags = json.dumps({**json.loads(row.tags), **tags})
            if params:
                row.params = json.dumps({**json.loads(row.params), **params})
            row.updated_at = utcnow()
            s.flush()
            return _logged(row)

    def search_logged_models(self, project: str, experiment_ids: list[str], name: str | None,
                             source_run_id: str | None, limit: int) -> list[LoggedModel]:
        q: Any = sa.select(MlflowLoggedModelRow).where(MlflowLoggedModelRow.project == project)
        if experiment_ids:
            q = q.where(MlflowLoggedModelRow.experiment_id.in_(experiment_ids))
        if name is not None:
            q = q.where(MlflowLoggedModelRow.name == name)
        if source_run_id:
            q = q.where(MlflowLoggedModelRow.source_run_id == source_run_id)
        with self.db.session() as s:
            rows = s.scalars(q.order_by(MlflowLoggedModelRow.created_at.desc()).limit(limit)).all()
            return [_logged(r) for r in rows]


    # where registered versions came from
    def put_version_source(self, project: str, model: str, version: int, source: str,
                           prefix: str) -> None:
        with self.db.session() as s:
            s.add(MlflowVersionSourceRow(project=project, model=model, version=version,
                                         source=source[:2000], prefix=prefix))

    def version_source(self, project: str, model: str, version: int) -> tuple[str, str] | None:
        """(source, prefix) of a version registered through MLflow; None for the others."""
        with self.db.session() as s:
            row = s.get(MlflowVersionSourceRow, (project, model, version))
            return (row.source, row.prefix) if row else None
