"""Persistence of pipelines, runs, step runs and triggers; rows never leave this module.

The engine keeps its working set in memory and writes every transition here first, so the
database alone is enough to resume after a crash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.workflows.models import (
    Pipeline,
    PipelineVersion,
    Run,
    StepInfo,
    StepRun,
    Trigger,
)
from modelyard.workflows.tables import (
    PipelineRow,
    PipelineVersionRow,
    RunRow,
    StepRunRow,
    TriggerRow,
)

ACTIVE = ("queued", "running")


class WorkflowStore:
    """SQL store (SQLite or PostgreSQL) of the workflow manager. Returns pydantic copies."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- pipelines --------------------------------------------------------------------------
    def upsert_pipeline(self, project: str, name: str, source: str, description: str,
                        digest: str, definition: dict[str, Any], actor: str,
                        package_digest: str | None = None, entry: str | None = None) -> Pipeline:
        now = utcnow()
        with self.db.session() as s:
            row = s.scalar(sa.select(PipelineRow).filter_by(project=project, name=name))
            if row is None:
                row = PipelineRow(id=new_id("pipe"), project=project, name=name, source=source,
                                  package_digest=package_digest, entry=entry,
                                  description=description, latest_hash=digest, created_at=now,
                                  updated_at=now, created_by=actor)
                s.add(row)
                s.flush()
            else:
                row.source, row.description, row.latest_hash = source, description, digest
                row.package_digest, row.entry = package_digest, entry
                row.updated_at = now
            self._ensure_version(s, row.id, digest, definition, package_digest)
            return _pipeline(row, definition)

    def _ensure_version(self, s: Any, pipeline_id: str, digest: str,
                        definition: dict[str, Any], package_digest: str | None = None) -> None:
        exists = s.scalar(sa.select(PipelineVersionRow.id).filter_by(pipeline_id=pipeline_id,
                                                                     hash=digest))
        if exists is None:
            s.add(PipelineVersionRow(id=new_id("pver"), pipeline_id=pipeline_id, hash=digest,
                                     package_digest=package_digest, definition=definition,
                                     created_at=utcnow()))

    def definition(self, project: str, name: str, digest: str) -> dict[str, Any]:
        """The stored definition of one version of a pipeline ({} when there is none)."""
        with self.db.session() as s:
            pid = s.scalar(sa.select(PipelineRow.id).filter_by(project=project, name=name))
            return self._definition(s, pid, digest) if pid else {}

    def run_definition(self, run_id: str) -> dict[str, Any]:
        """The definition of the version a run runs ({} when there is none)."""
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            return self._definition(s, row.pipeline_id, row.version_hash) if row else {}

    def get_pipeline(self, project: str, name: str) -> Pipeline:
        with self.db.session() as s:
            row = s.scalar(sa.select(PipelineRow).filter_by(project=project, name=name))
            if row is None:
                raise NotFound(f"pipeline {name!r} does not exist in project {project!r}; "
                               "register it first (POST .../pipelines)")
            return _pipeline(row, self._definition(s, row.id, row.latest_hash))

    def _definition(self, s: Any, pipeline_id: str, digest: str) -> dict[str, Any]:
        d = s.scalar(sa.select(PipelineVersionRow.definition).filter_by(pipeline_id=pipeline_id,
                                                                         hash=digest))
        return d or {}

    def list_pipelines(self, project: str) -> list[Pipeline]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(PipelineRow).filter_by(project=project)
                             .order_by(PipelineRow.name)).all()
            return [_pipeline(r, self._definition(s, r.id, r.latest_hash)) for r in rows]

    def versions(self, project: str, name: str) -> list[PipelineVersion]:
        """Oldest first."""
        with self.db.session() as s:
            q = (sa.select(PipelineVersionRow, PipelineRow.latest_hash).join(PipelineRow,
                 PipelineRow.id == PipelineVersionRow.pipeline_id)
                 .filter(PipelineRow.project == project, PipelineRow.name == name)
                 .order_by(PipelineVersionRow.created_at, PipelineVersionRow.id))
            return [PipelineVersion(hash=v.hash, package_digest=v.package_digest,
                                    created_at=v.created_at, current=v.hash == latest)
                    for v, latest in s.execute(q).all()]

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, pipeline: Pipeline, digest: str, definition: dict[str, Any],
                   params: dict[str, Any], trigger: str, actor: str,
                   no_cache: bool = False) -> Run:
        # The code the run runs is its version's package (an older version's, when asked)
        package = definition.get("package")
        package_digest = package.get("digest") if isinstance(package, dict) else None
        with self.db.session() as s:
            self._ensure_version(s, pipeline.id, digest, definition, package_digest)
            row = RunRow(id=new_id("prun"), project=pipeline.project, pipeline_id=pipeline.id,
                         pipeline=pipeline.name, version_hash=digest,
                         package_digest=package_digest, state="queued",
                         params=params, trigger=trigger, created_by=actor, created_at=utcnow(),
                         cancel_requested=False, no_cache=no_cache)
            s.add(row)
            s.flush()
            return _run(row, [])

    def get_run(self, run_id: str, project: str | None = None) -> Run:
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"pipeline run {run_id!r} does not exist"
                               + (f" in project {project!r}" if project else ""))
            steps = s.scalars(sa.select(StepRunRow).filter_by(run_id=run_id)).all()
            definition = self._definition(s, row.pipeline_id, row.version_hash)
            order = {d["name"]: i for i, d in enumerate(definition.get("steps", []))}
            return _run(row, sorted(steps, key=lambda r: _step_order(r.step, order)))

    def list_runs(self, project: str, pipeline: str | None, limit: int) -> list[Run]:
        with self.db.session() as s:
            q = sa.select(RunRow).filter_by(project=project)
            if pipeline:
                q = q.filter_by(pipeline=pipeline)
            rows = s.scalars(q.order_by(RunRow.created_at.desc(), RunRow.id.desc())
                             .limit(limit)).all()
            return [_run(r, []) for r in rows]

    def active_runs(self) -> list[tuple[str, bool, str | None]]:
        """(id, cancel requested, owner) of every queued or running run, oldest first."""
        with self.db.session() as s:
            q = (sa.select(RunRow.id, RunRow.cancel_requested, RunRow.owner)
                 .where(RunRow.state.in_(ACTIVE)).order_by(RunRow.created_at))
            return [(i, bool(c), o) for i, c, o in s.execute(q).all()]

    def claim_run(self, run_id: str, owner: str, lease_until: datetime, now: datetime,
                  dead_owners: set[str]) -> bool:
        """Make `owner` the one engine driving the run: free, already ours, its lease expired,
        or its owner known dead. False when another live engine holds it."""
        with self.db.session() as s:
            free = sa.or_(RunRow.owner.is_(None), RunRow.owner == owner,
                          RunRow.lease_until < now,
                          *([RunRow.owner.in_(dead_owners)] if dead_owners else []))
            res = s.execute(sa.update(RunRow).where(RunRow.id == run_id, free)
                            .values(owner=owner, lease_until=lease_until))
            return bool(res.rowcount)  # type: ignore[attr-defined]  # a CursorResult

    def run_owners(self, run_ids: list[str]) -> dict[str, str | None]:
        with self.db.session() as s:
            q = sa.select(RunRow.id, RunRow.owner).where(RunRow.id.in_(run_ids))
            return {i: o for i, o in s.execute(q).all()}

    def renew_leases(self, owner: str, lease_until: datetime) -> None:
        with self.db.session() as s:
            s.execute(sa.update(RunRow).where(RunRow.owner == owner,
                                              RunRow.state.in_(ACTIVE))
                      .values(lease_until=lease_until))

    def release_runs(self, owner: str) -> None:
        with self.db.session() as s:
            s.execute(sa.update(RunRow).where(RunRow.owner == owner)
                      .values(owner=None, lease_until=None))

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self.db.session() as s:
            s.execute(sa.update(RunRow).where(RunRow.id == run_id).values(**fields))

    def request_cancel(self, project: str, run_id: str) -> Run:
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None or row.project != project:
                raise NotFound(f"pipeline run {run_id!r} does not exist in project {project!r}")
            if row.state in ACTIVE:
                row.cancel_requested = True
            return _run(row, [])

    # -- step runs --------------------------------------------------------------------------
    def create_step(self, run_id: str, step: str, **fields: Any) -> str:
        sid = new_id("pstep")
        with self.db.session() as s:
            s.add(StepRunRow(id=sid, run_id=run_id, step=step, state=fields.pop("state", "pending"),
                             attempts=0, effects={}, **fields))
        return sid

    def update_step(self, step_id: str, **fields: Any) -> None:
        with self.db.session() as s:
            s.execute(sa.update(StepRunRow).where(StepRunRow.id == step_id).values(**fields))

    def find_cached(self, project: str, cache_key: str) -> StepRun | None:
        with self.db.session() as s:
            q = (sa.select(StepRunRow).join(RunRow, RunRow.id == StepRunRow.run_id)
                 .where(RunRow.project == project, StepRunRow.cache_key == cache_key,
                        StepRunRow.state == "succeeded")
                 .order_by(StepRunRow.finished_at.desc()).limit(1))
            row = s.scalar(q)
            return _step(row) if row else None

    # -- triggers ---------------------------------------------------------------------------
    def create_trigger(self, pipeline: Pipeline, kind: str, cron: str | None, event: str | None,
                       match: dict[str, Any], params: dict[str, Any], enabled: bool,
                       next_fire_at: datetime | None, actor: str,
                       cursor: dict[str, Any] | None = None, no_cache: bool = False) -> Trigger:
        with self.db.session() as s:
            row = TriggerRow(id=new_id("ptrg"), project=pipeline.project, pipeline_id=pipeline.id,
                             kind=kind, cron=cron, event=event, match=match, params=params,
                             cursor=cursor or {}, no_cache=no_cache,
                             enabled=enabled, next_fire_at=next_fire_at, created_at=utcnow(),
                             created_by=actor)
            s.add(row)
            s.flush()
            return _trigger(row, pipeline.name)

    def list_triggers(self, project: str | None = None, pipeline: str | None = None,
                      event: str | None = None) -> list[Trigger]:
        with self.db.session() as s:
            q = sa.select(TriggerRow, PipelineRow.name).join(
                PipelineRow, PipelineRow.id == TriggerRow.pipeline_id)
            if project:
                q = q.where(TriggerRow.project == project)
            if pipeline:
                q = q.where(PipelineRow.name == pipeline)
            if event:
                q = q.where(TriggerRow.event == event, TriggerRow.enabled.is_(True))
            return [_trigger(r, n) for r, n in s.execute(q.order_by(TriggerRow.id)).all()]

    def get_trigger(self, project: str, trigger_id: str) -> Trigger:
        for t in self.list_triggers(project):
            if t.id == trigger_id:
                return t
        raise NotFound(f"schedule {trigger_id!r} does not exist in project {project!r}")

    def advance_cursor(self, trigger_id: str, key: str, value: int) -> bool:
        """Move a trigger's cursor forward; False when it already was at or past `value`
        (so a commit seen by both the event hook and the watcher fires once)."""
        with self.db.session() as s:
            row = s.get(TriggerRow, trigger_id, with_for_update=True)
            if row is None or int((row.cursor or {}).get(key, 0)) >= value:
                return False
            row.cursor = {**(row.cursor or {}), key: value}
            return True

    def update_trigger(self, trigger_id: str, **fields: Any) -> None:
        with self.db.session() as s:
            s.execute(sa.update(TriggerRow).where(TriggerRow.id == trigger_id).values(**fields))

    def delete_trigger(self, project: str, trigger_id: str) -> None:
        with self.db.session() as s:
            row = s.get(TriggerRow, trigger_id)
            if row is None or row.project != project:
                raise NotFound(f"schedule {trigger_id!r} does not exist in project {project!r}")
            s.delete(row)

    def due_cron(self, now: datetime) -> list[Trigger]:
        with self.db.session() as s:
            q = (sa.select(TriggerRow, PipelineRow.name)
                 .join(PipelineRow, PipelineRow.id == TriggerRow.pipeline_id)
                 .where(TriggerRow.kind == "cron", TriggerRow.enabled.is_(True),
                        TriggerRow.next_fire_at <= now))
            return [_trigger(r, n) for r, n in s.execute(q).all()]


def _step_order(step: str, order: dict[str, int]) -> tuple[int, int]:
    """Steps in the definition's order; a mapped step's elements right after it."""
    base, _, index = step.partition("[")
    return order.get(base, len(order)), int(index[:-1]) + 1 if index else 0


def _pipeline(row: PipelineRow, definition: dict[str, Any]) -> Pipeline:
    steps = [StepInfo(name=d["name"], kind=d.get("kind", "python"), inputs=d.get("inputs", {}),
                      params=d.get("params", []), map_over=d.get("map_over"))
             for d in definition.get("steps", [])]
    return Pipeline(id=row.id, project=row.project, name=row.name, source=row.source,
                    package_digest=row.package_digest, entry=row.entry,
                    description=row.description, definition_hash=row.latest_hash, steps=steps,
                    params=definition.get("params", {}), created_at=row.created_at,
                    updated_at=row.updated_at, created_by=row.created_by)


def _step(r: StepRunRow) -> StepRun:
    return StepRun(id=r.id, step=r.step, state=r.state, attempts=r.attempts,
                   inputs_digest=r.inputs_digest, cache_key=r.cache_key, output=r.output,
                   output_ref=r.output_ref, output_digest=r.output_digest,
                   effects=dict(r.effects or {}), cached_from=r.cached_from, error=r.error,
                   traceback=r.traceback, log_tail=r.log_tail, started_at=r.started_at, finished_at=r.finished_at)


def _run(row: RunRow, steps: Any) -> Run:
    return Run(id=row.id, project=row.project, pipeline=row.pipeline,
               version_hash=row.version_hash, package_digest=row.package_digest, state=row.state, params=dict(row.params or {}),
               trigger=row.trigger, created_by=row.created_by, created_at=row.created_at,
               started_at=row.started_at, finished_at=row.finished_at, error=row.error,
               cancel_requested=bool(row.cancel_requested), no_cache=bool(row.no_cache),
               steps=[_step(x) for x in steps])


def _trigger(row: TriggerRow, pipeline: str) -> Trigger:
    return Trigger(id=row.id, project=row.project, pipeline=pipeline, kind=row.kind,  # type: ignore[arg-type]
                   cron=row.cron, event=row.event, match=dict(row.match or {}),
                   params=dict(row.params or {}), cursor=dict(row.cursor or {}),
                   enabled=bool(row.enabled), no_cache=bool(row.no_cache),
                   next_fire_at=row.next_fire_at, last_fired_at=row.last_fired_at,
                   created_at=row.created_at, created_by=row.created_by)
