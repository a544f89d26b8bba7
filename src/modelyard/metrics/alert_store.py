"""Persistence of alert rules and their state changes, always in the metadata database."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.metrics.models import AlertEvent, AlertRule, AlertRuleSpec
from modelyard.metrics.tables import AlertEventRow, AlertRuleRow


class AlertStore(abc.ABC):
    """Alert rules by (project, name), their current state, and state changes."""

    @abc.abstractmethod
    def create_rule(self, project: str, spec: AlertRuleSpec, actor: str) -> AlertRule:
        """Raises AlreadyExists when the name is taken in the project."""

    @abc.abstractmethod
    def rules(self, project: str | None) -> list[AlertRule]: ...

    @abc.abstractmethod
    def get_rule(self, project: str, name: str) -> AlertRule: ...

    @abc.abstractmethod
    def delete_rule(self, project: str, name: str) -> None: ...

    @abc.abstractmethod
    def set_state(self, rule_id: str, state: str, value: float | None, at: datetime,
                  message: str) -> AlertRule:
        """Stores the evaluation; a changed state is also appended to the history."""

    @abc.abstractmethod
    def history(self, project: str, name: str, limit: int) -> list[AlertEvent]:
        """Newest first."""


class SqlAlertStore(AlertStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_rule(self, project: str, spec: AlertRuleSpec, actor: str) -> AlertRule:
        with self.db.session() as s:
            if s.scalar(sa.select(AlertRuleRow.id).where(AlertRuleRow.project == project,
                                                          AlertRuleRow.name == spec.name)):
                raise AlreadyExists(f"alert rule {spec.name!r} already exists in {project!r}; "
                                    "delete it first or pick another name")
            row = AlertRuleRow(id=new_id("alr"), project=project, name=spec.name,
                               spec=spec.model_dump(mode="json"), state="no_data", value=None,
                               evaluated_at=None, created_at=utcnow(), created_by=actor)
            s.add(row)
            return _rule(row)

    def rules(self, project: str | None) -> list[AlertRule]:
        with self.db.session() as s:
            q = sa.select(AlertRuleRow).order_by(AlertRuleRow.project, AlertRuleRow.name)
            if project is not None:
                q = q.where(AlertRuleRow.project == project)
            return [_rule(r) for r in s.scalars(q)]

    def get_rule(self, project: str, name: str) -> AlertRule:
        with self.db.session() as s:
            return _rule(_rule_row(s, project, name))

    def delete_rule(self, project: str, name: str) -> None:
        with self.db.session() as s:
            row = _rule_row(s, project, name)
            s.execute(sa.delete(AlertEventRow).where(AlertEventRow.rule_id == row.id))
            s.delete(row)

    def set_state(self, rule_id: str, state: str, value: float | None, at: datetime,
                  message: str) -> AlertRule:
        with self.db.session() as s:
            row = s.get(AlertRuleRow, rule_id)
            if row is None:
                raise NotFound(f"alert rule {rule_id!r} does not exist")
            if row.state != state:
                s.add(AlertEventRow(rule_id=row.id, time=at, from_state=row.state,
                                    to_state=state, value=value, message=message))
            row.state, row.value, row.evaluated_at = state, value, at
            return _rule(row)

    def history(self, project: str, name: str, limit: int) -> list[AlertEvent]:
        with self.db.session() as s:
            row = _rule_row(s, project, name)
            events = s.scalars(sa.select(AlertEventRow).where(AlertEventRow.rule_id == row.id)
                               .order_by(AlertEventRow.time.desc(), AlertEventRow.id.desc())
                               .limit(limit))
            return [AlertEvent(rule=name, time=e.time, from_state=e.from_state,
                               to_state=e.to_state, value=e.value, message=e.message)
                    for e in events]


def _rule_row(s: Any, project: str, name: str) -> AlertRuleRow:
    row = s.scalar(sa.select(AlertRuleRow).where(AlertRuleRow.project == project,
                                                 AlertRuleRow.name == name))
    if row is None:
        raise NotFound(f"alert rule {name!r} does not exist in project {project!r}")
    return row  # type: ignore[no-any-return]


def _rule(row: AlertRuleRow) -> AlertRule:
    return AlertRule(id=row.id, project=row.project, spec=AlertRuleSpec.model_validate(row.spec),
                     state=row.state, value=row.value,  # type: ignore[arg-type]
                     evaluated_at=row.evaluated_at, created_at=row.created_at,
                     created_by=row.created_by)
