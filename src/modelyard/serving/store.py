"""Persistence of deployments and their event history."""

from __future__ import annotations

import abc
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.serving.models import Batching, Deployment, DeploymentEvent, RollbackRule
from modelyard.serving.tables import DeploymentEventRow, DeploymentRow

_FIELDS = ("model_ref", "traffic", "shadow_version", "batching", "rollback", "pinned")


class DeploymentStore(abc.ABC):
    """Deployments by (project, name) and an append-only event log. Returns immutable copies."""

    @abc.abstractmethod
    def create(self, project: str, name: str, fields: dict[str, Any], actor: str) -> Deployment:
        """Raises AlreadyExists when the name is taken in the project."""

    @abc.abstractmethod
    def get(self, project: str, name: str) -> Deployment:
        """Raises NotFound."""

    @abc.abstractmethod
    def list_deployments(self, project: str | None) -> list[Deployment]:
        """Deployments of a project, or of every project when None."""

    @abc.abstractmethod
    def update(self, project: str, name: str, fields: dict[str, Any],
               event: tuple[str, str, dict[str, Any]] | None = None) -> Deployment:
        """Sets only the given fields (JSON-ready values) and records `event` (kind, message,
        details) in the same transaction. Raises NotFound."""

    @abc.abstractmethod
    def delete(self, project: str, name: str,
               event: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Removes the deployment (its event history stays) and records `event`."""

    @abc.abstractmethod
    def add_event(self, project: str, deployment: str, kind: str, message: str,
                  details: dict[str, Any]) -> DeploymentEvent: ...

    @abc.abstractmethod
    def events(self, project: str, deployment: str, limit: int) -> list[DeploymentEvent]:
        """Newest first."""


class SqlDeploymentStore(DeploymentStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, project: str, name: str, fields: dict[str, Any], actor: str) -> Deployment:
        with self.db.session() as s:
            if s.scalar(sa.select(DeploymentRow.id).where(DeploymentRow.project == project,
                                                           DeploymentRow.name == name)):
                raise AlreadyExists(
                    f"deployment {name!r} already exists in project {project!r}; update it or "
                    "pick another name", {"deployment": name})
            now = utcnow()
            row = DeploymentRow(id=new_id("dep"), project=project, name=name, created_at=now,
                                updated_at=now, created_by=actor,
                                **{k: fields.get(k) for k in _FIELDS})
            s.add(row)
            s.add(_event_row(project, name, "created", f"created by {actor}", fields))
            return _deployment(row)

    def get(self, project: str, name: str) -> Deployment:
        with self.db.session() as s:
            return _deployment(_get(s, project, name))

    def list_deployments(self, project: str | None) -> list[Deployment]:
        with self.db.session() as s:
            q = sa.select(DeploymentRow).order_by(DeploymentRow.project, DeploymentRow.name)
            if project is not None:
                q = q.where(DeploymentRow.project == project)
            return [_deployment(r) for r in s.scalars(q)]

    def update(self, project: str, name: str, fields: dict[str, Any],
               event: tuple[str, str, dict[str, Any]] | None = None) -> Deployment:
        with self.db.session() as s:
            row = _get(s, project, name)
            for k, v in fields.items():
                if k in _FIELDS:
                    setattr(row, k, v)
            row.updated_at = utcnow()
            if event is not None:
                s.add(_event_row(project, name, *event))
            return _deployment(row)

    def delete(self, project: str, name: str, event: tuple[str, str, dict[str, Any]] | None
               = None) -> None:
        with self.db.session() as s:
            s.delete(_get(s, project, name))
            if event is not None:
                s.add(_event_row(project, name, *event))

    def add_event(self, project: str, deployment: str, kind: str, message: str,
                  details: dict[str, Any]) -> DeploymentEvent:
        with self.db.session() as s:
            row = _event_row(project, deployment, kind, message, details)
            s.add(row)
            return _event(row)

    def events(self, project: str, deployment: str, limit: int) -> list[DeploymentEvent]:
        with self.db.session() as s:
            rows = s.scalars(
                sa.select(DeploymentEventRow)
                .where(DeploymentEventRow.project == project,
                       DeploymentEventRow.deployment == deployment)
                .order_by(DeploymentEventRow.time.desc(), DeploymentEventRow.id.desc())
                .limit(limit)
            )
            return [_event(r) for r in rows]


def _get(s: Any, project: str, name: str) -> DeploymentRow:
    row = s.scalar(sa.select(DeploymentRow).where(DeploymentRow.project == project,
                                                  DeploymentRow.name == name))
    if row is None:
        raise NotFound(f"deployment {name!r} does not exist in project {project!r}",
                       {"deployment": name})
    return row  # type: ignore[no-any-return]


def _event_row(project: str, deployment: str, kind: str, message: str,
               details: dict[str, Any]) -> DeploymentEventRow:
    return DeploymentEventRow(project=project, deployment=deployment, time=utcnow(), kind=kind,
                              message=message, details=details)


def _deployment(row: DeploymentRow) -> Deployment:
    return Deployment(
        id=row.id, project=row.project, name=row.name, model=row.model_ref.split("@", 1)[0],
        model_ref=row.model_ref, traffic=row.traffic, shadow_version=row.shadow_version,
        batching=Batching.model_validate(row.batching or {}),
        rollback=RollbackRule.model_validate(row.rollback) if row.rollback else None,
        pinned=row.pinned, created_at=row.created_at, updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _event(row: DeploymentEventRow) -> DeploymentEvent:
    return DeploymentEvent(time=row.time, deployment=row.deployment, kind=row.kind,
                           message=row.message, details=row.details or {})
