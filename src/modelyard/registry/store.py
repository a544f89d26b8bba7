"""Persistence of the registry: the contract every backend keeps, and the SQL backend.

Guarantees of every implementation: returned objects are immutable copies (no ORM row leaves
the store); every method is one transaction, so a failing call stores nothing; lookups of
another project's objects raise NotFound, exactly as for missing ones; the version number of a
new model version is allocated under a lock on its model, so concurrent registrations get
1, 2, 3... without gaps or duplicates.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from modelyard.core.db import Database
from modelyard.registry._checks import Point
from modelyard.registry._compare import CompareSql
from modelyard.registry._lineage_sql import LineageSql
from modelyard.registry._models_sql import ModelsSql
from modelyard.registry._runs_sql import RunsSql
from modelyard.registry._search import Clause, SortKey
from modelyard.registry.models import (
    AliasMove,
    Artifact,
    LineageEdge,
    MetricPoint,
    MetricSummary,
    Model,
    ModelVersion,
    Run,
)


class RegistryStore(abc.ABC):
    # runs and metric series
    @abc.abstractmethod
    def create_run(self, project: str, experiment: str, params: dict[str, Any],
                   tags: dict[str, str], job_id: str | None, code_hash: str | None,
                   dataset_snapshot: str | None, user: str, edges: list[LineageEdge]) -> Run:
        """Creates the experiment if missing; `edges` are stored with the run (dst id may be '')."""

    @abc.abstractmethod
    def get_run(self, project: str, run_id: str) -> Run: ...

    @abc.abstractmethod
    def finish_run(self, project: str, run_id: str, status: str) -> Run: ...

    @abc.abstractmethod
    def update_run(self, project: str, run_id: str, params: dict[str, Any],
                   tags: dict[str, str], delete_tags: list[str]) -> Run:
        """Adds params (one already there with another value is refused: InvalidArgument),
        sets and deletes tags, all or none; allowed on ended runs too."""

    @abc.abstractmethod
    def log_metrics(self, project: str, run_id: str, points: list[Point]) -> int:
        """Bulk-inserts every (key, step, value, time) point, all or none, and keeps each
        series' latest point (highest step, then time)."""

    @abc.abstractmethod
    def get_metric_series(self, project: str, run_id: str, key: str) -> list[MetricPoint]:
        """Points ordered by step, then time."""

    @abc.abstractmethod
    def metric_summaries(self, project: str,
                         run_ids: list[str]) -> dict[str, dict[str, MetricSummary]]:
        """run id -> metric key -> last/min/max/count of its series (every id has an entry)."""

    @abc.abstractmethod
    def search_runs(self, project: str, clauses: list[Clause], order: list[SortKey],
                    experiment: str | None, offset: int, limit: int) -> tuple[list[Run], bool]:
        """A page of runs matching every clause, and whether more follow."""

    # artifacts
    @abc.abstractmethod
    def add_artifact(self, project: str, digest: str, size: int, media_type: str, name: str,
                     user: str) -> Artifact:
        """Idempotent: the existing row of the same digest in the project is returned, and
        its retention starts again (it counts from the last upload)."""

    @abc.abstractmethod
    def get_artifact(self, project: str, digest: str) -> Artifact: ...

    @abc.abstractmethod
    def list_artifacts(self, project: str, offset: int, limit: int) -> list[Artifact]: ...

    @abc.abstractmethod
    def collect_artifacts(self, older_than: datetime,
                          project: str | None) -> tuple[list[tuple[str, int]], int]:
        """Deletes artifact rows (of `project`, or of all projects with None) that no model
        version of their project holds and that were last uploaded before `older_than`. Returns the
        (digest, size) of digests no row of any project references any more, and the number
        of rows deleted."""

    # models, versions and aliases
    @abc.abstractmethod
    def ensure_model(self, project: str, name: str, user: str) -> Model: ...

    @abc.abstractmethod
    def get_model(self, project: str, name: str) -> Model: ...

    @abc.abstractmethod
    def list_models(self, project: str) -> list[Model]: ...

    @abc.abstractmethod
    def add_version(self, project: str, model: str, fields: dict[str, Any], user: str,
                    edges: list[LineageEdge]) -> ModelVersion:
        """Allocates the next version number; `edges` with dst id '' point at the new version."""

    @abc.abstractmethod
    def get_version(self, project: str, model: str, version: int | None,
                    alias: str | None = None) -> ModelVersion:
        """By number, by alias, or the latest when both are None."""

    @abc.abstractmethod
    def version_by_id(self, project: str, version_id: str) -> ModelVersion: ...

    @abc.abstractmethod
    def list_versions(self, project: str, model: str) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def update_version(self, project: str, model: str, version: int,
                       changes: dict[str, Any]) -> ModelVersion:
        """Sets description, tags and/or `archived` (bool); archiving a version an alias
        points at raises Conflict naming the aliases."""

    @abc.abstractmethod
    def delete_version(self, project: str, model: str, version: int) -> ModelVersion:
        """Deletes the version (returned as it was); Conflict naming the aliases on it."""

    @abc.abstractmethod
    def set_alias(self, project: str, model: str, alias: str, version: int | None,
                  actor: str) -> AliasMove:
        """Moves (or, with version None, removes) the alias and records the move atomically.
        An alias already on `version` is left alone: no history row, `moved` is False."""

    @abc.abstractmethod
    def alias_history(self, project: str, model: str, alias: str | None) -> list[AliasMove]:
        """Moves, newest first."""

    # lineage
    @abc.abstractmethod
    def add_edges(self, project: str, edges: list[LineageEdge]) -> None:
        """Idempotent: an edge already stored is left as is."""

    @abc.abstractmethod
    def edges_of(self, project: str, nodes: list[tuple[str, str]], upstream: bool) -> list[LineageEdge]:
        """Edges into (upstream) or out of (downstream) any of `nodes`."""

    @abc.abstractmethod
    def is_referenced(self, project: str, kind: str, node_id: str) -> bool: ...

    @abc.abstractmethod
    def node_attrs(self, project: str, nodes: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """What the registry knows of runs and model versions among `nodes`."""


class SqlRegistryStore(RunsSql, ModelsSql, LineageSql, CompareSql, RegistryStore):
    """The registry in SQLite or PostgreSQL through SQLAlchemy."""

    def __init__(self, db: Database) -> None:
        self.db = db
