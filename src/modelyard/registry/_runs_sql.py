"""SQL persistence of experiments, runs, params, tags and metric series."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from modelyard.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.registry._checks import Point
from modelyard.registry._search import Clause, SortKey
from modelyard.registry._sql import SqlBase, chunks, compare, insert_edges, point_edges_at, upsert
from modelyard.registry.models import LineageEdge, MetricPoint, Run
from modelyard.registry.tables import (
    ExperimentRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunRow,
    TagRow,
)

# Core tables for bulk statements (no ORM bookkeeping per row).
_RUNS = cast(sa.Table, RunRow.__table__)
_PARAMS = cast(sa.Table, ParamRow.__table__)
_TAGS = cast(sa.Table, TagRow.__table__)
_METRICS = cast(sa.Table, MetricRow.__table__)
_LATEST = cast(sa.Table, LatestMetricRow.__table__)

_ATTR_COLUMNS: dict[str, Any] = {
    "id": RunRow.id, "status": RunRow.status, "user": RunRow.user, "job_id": RunRow.job_id,
    "code_hash": RunRow.code_hash, "dataset_snapshot": RunRow.dataset_snapshot,
    "experiment": ExperimentRow.name, "created_at": RunRow.created_at, "ended_at": RunRow.ended_at,
}


def _param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    num = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return {"run_id": run_id, "key": key, "value": json.dumps(value), "text": text[:500], "num": num}


class RunsSql(SqlBase):
    def create_run(self, project: str, experiment: str, params: dict[str, Any],
                   tags: dict[str, str], job_id: str | None, code_hash: str | None,
                   dataset_snapshot: str | None, user: str, edges: list[LineageEdge]) -> Run:
        now = utcnow()
        exp_id = self._experiment_id(project, experiment, now)
        run_id = new_id("run")
        with self.db.session() as s:
            s.execute(sa.insert(_RUNS), [{
                "id": run_id, "project": project, "experiment_id": exp_id, "status": "running",
                "job_id": job_id, "code_hash": code_hash, "dataset_snapshot": dataset_snapshot,
                "user": user, "created_at": now, "ended_at": None}])
            if params:
                s.execute(sa.insert(_PARAMS),
                          [_param_row(run_id, k, v) for k, v in params.items()])
            if tags:
                s.execute(sa.insert(_TAGS),
                          [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
            insert_edges(s, project, point_edges_at(edges, "run", run_id), now)
        return Run(id=run_id, project=project, experiment=experiment, status="running",
                   params=params, tags=tags, metrics={}, job_id=job_id, code_hash=code_hash,
                   dataset_snapshot=dataset_snapshot, user=user, created_at=now, ended_at=None)

    def _experiment_id(self, project: str, name: str, now: datetime) -> str:
        """Experiments are never renamed or deleted, so their ids are cached once read."""
        cache: dict[tuple[str, str], str] = self.__dict__.setdefault("_experiments", {})
        if (project, name) in cache:
            return cache[(project, name)]
        cache[(project, name)] = found = self._find_or_add_experiment(project, name, now)
        return found

    def _find_or_add_experiment(self, project: str, name: str, now: datetime) -> str:
        for _ in range(2):
            with self.db.session() as s:
                found = s.scalar(sa.select(ExperimentRow.id).where(
                    ExperimentRow.project == project, ExperimentRow.name == name))
                if found:
                    return found
            try:
                exp_id = new_id("exp")
                with self.db.session() as s:
                    s.add(ExperimentRow(id=exp_id, project=project, name=name, created_at=now))
                return exp_id
            except AlreadyExists:  # created concurrently: read it again
                continue
        raise AlreadyExists(f"experiment {name!r} could not be created; retry")

    def _check_run(self, s: Session, project: str, run_id: str) -> None:
        found = s.execute(sa.select(RunRow.project).where(RunRow.id == run_id)).scalar()
        if found != project:
            raise NotFound(f"run {run_id!r} does not exist in project {project!r}",
                           {"run_id": run_id})

    def _run_row(self, s: Session, project: str, run_id: str, lock: bool = False) -> RunRow:
        # lock: held until commit, so a run's end and a write to it never interleave
        row = s.get(RunRow, run_id, with_for_update=lock)
        if row is None or row.project != project:
            raise NotFound(f"run {run_id!r} does not exist in project {project!r}",
                           {"run_id": run_id})
        return row

    def get_run(self, project: str, run_id: str) -> Run:
        with self.db.session() as s:
            row = self._run_row(s, project, run_id)
            return self._runs_to_models(s, [row])[0]

    def finish_run(self, project: str, run_id: str, status: str) -> Run:
        with self.db.session() as s:
            row = self._run_row(s, project, run_id, lock=True)
            if row.status == "running":
                row.status = status
                row.ended_at = utcnow()
            elif row.status != status:  # the same end again is a no-op; another is refused
                raise _ended(row, f"cannot end it again as {status!r}")
        return self.get_run(project, run_id)

    def update_run(self, project: str, run_id: str, params: dict[str, Any],
                   tags: dict[str, str], delete_tags: list[str]) -> Run:
        with self.db.session() as s:
            self._run_row(s, project, run_id, lock=True)
            if params:
                have = dict(s.execute(sa.select(ParamRow.key, ParamRow.value).where(
                    ParamRow.run_id == run_id, ParamRow.key.in_(list(params)))).tuples().all())
                for k, v in params.items():
                    if k in have and json.loads(have[k]) != v:
                        raise InvalidArgument(
                            f"param {k!r} of run {run_id} is already {json.loads(have[k])!r}: "
                            "a run's params never change; log the new value under another "
                            "name or start a new run", {"run_id": run_id, "param": k})
                new = [_param_row(run_id, k, v) for k, v in params.items() if k not in have]
                if new:
                    s.execute(sa.insert(_PARAMS), new)
            if tags:
                stmt = upsert(s, _TAGS)
                s.execute(stmt.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
            if delete_tags:
                s.execute(sa.delete(_TAGS).where(_TAGS.c.run_id == run_id,
                                                 _TAGS.c.key.in_(delete_tags)))
        return self.get_run(project, run_id)

    def _runs_to_models(self, s: Session, rows: list[RunRow],
                        parts: tuple[str, ...] = ("params", "tags", "metrics")) -> list[Run]:
        ids = [r.id for r in rows]
        exps = dict(s.execute(sa.select(ExperimentRow.id, ExperimentRow.name).where(
            ExperimentRow.id.in_({r.experiment_id for r in rows}))).tuples().all())
        params: dict[str, dict[str, Any]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        for part in chunks(ids):
            if "params" in parts:
                for run_id, key, value in s.execute(sa.select(
                        ParamRow.run_id, ParamRow.key, ParamRow.value).where(ParamRow.run_id.in_(part))):
                    params[run_id][key] = json.loads(value)
            if "tags" in parts:
                for run_id, key, value in s.execute(sa.select(
                        TagRow.run_id, TagRow.key, TagRow.value).where(TagRow.run_id.in_(part))):
                    tags[run_id][key] = value
            if "metrics" in parts:
                for run_id, key, number in s.execute(sa.select(
                        LatestMetricRow.run_id, LatestMetricRow.key, LatestMetricRow.value
                ).where(LatestMetricRow.run_id.in_(part))):
                    metrics[run_id][key] = number
        return [Run(id=r.id, project=r.project, experiment=exps.get(r.experiment_id, ""),
                    status=r.status, params=params[r.id], tags=tags[r.id], metrics=metrics[r.id],
                    job_id=r.job_id, code_hash=r.code_hash, dataset_snapshot=r.dataset_snapshot,
                    user=r.user, created_at=r.created_at, ended_at=r.ended_at) for r in rows]

    def log_metrics(self, project: str, run_id: str, points: list[Point]) -> int:
        if not points:
            self.get_run(project, run_id)
            return 0
        latest: dict[str, Point] = {}
        for p in points:
            cur = latest.get(p[0])
            if cur is None or (p[1], p[3]) >= (cur[1], cur[3]):
                latest[p[0]] = p
        with self.db.session() as s:
            row = self._run_row(s, project, run_id, lock=True)
            if row.status != "running":
                raise _ended(row, "log metrics to a new run")
            s.execute(sa.insert(_METRICS), [
                {"run_id": run_id, "key": k, "step": step, "value": v, "time": t}
                for k, step, v, t in points])
            s.execute(_latest_upsert(s), [
                {"run_id": run_id, "key": k, "step": step, "value": v, "time": t}
                for k, step, v, t in latest.values()])
        return len(points)

    def get_metric_series(self, project: str, run_id: str, key: str) -> list[MetricPoint]:
        with self.db.session() as s:
            self._check_run(s, project, run_id)
            rows = s.execute(sa.select(MetricRow.step, MetricRow.value, MetricRow.time).where(
                MetricRow.run_id == run_id, MetricRow.key == key
            ).order_by(MetricRow.step, MetricRow.time, MetricRow.id)).all()
        return [MetricPoint(key=key, step=step, value=value, time=t) for step, value, t in rows]

    def search_runs(self, project: str, clauses: list[Clause], order: list[SortKey],
                    experiment: str | None, offset: int, limit: int) -> tuple[list[Run], bool]:
        q = sa.select(RunRow).join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id).where(
            RunRow.project == project)
        if experiment is not None:
            q = q.where(ExperimentRow.name == experiment)
        metric_joins: dict[str, Any] = {}  # one join per filtered metric, reused for sorting
        for c in clauses:
            if c.scope == "metrics":
                m = metric_joins.get(c.key)
                if m is None:
                    m = metric_joins[c.key] = aliased(LatestMetricRow)
                    q = q.join(m, sa.and_(m.run_id == RunRow.id, m.key == c.key))
                q = q.where(compare(m.value, c.op, c.value))
            else:
                q = _apply_clause(q, c)
        order_cols: list[Any] = []
        for k in order:
            if k.scope == "metrics" and k.key in metric_joins:
                cols, target, on = [metric_joins[k.key].value], None, None
            else:
                cols, target, on = _sort_columns(k)
            if target is not None:
                q = q.outerjoin(target, on)
            order_cols += [(c.desc() if k.descending else c.asc()).nulls_last() for c in cols]
        if not order:
            order_cols.append(RunRow.created_at.desc())
        order_cols.append(RunRow.id.desc() if not order else RunRow.id.asc())
        q = q.order_by(*order_cols).offset(offset).limit(limit + 1)
        with self.db.session() as s:
            rows = list(s.scalars(q).all())
            more = len(rows) > limit
            return self._runs_to_models(s, rows[:limit]), more


_UPSERTS: dict[str, Any] = {}


def _latest_upsert(s: Session) -> Any:
    """Keep the newest point of each series: by step, then by time (built once per dialect)."""
    dialect = s.get_bind().dialect.name
    if dialect not in _UPSERTS:
        _UPSERTS[dialect] = _build_latest_upsert(s)
    return _UPSERTS[dialect]


def _build_latest_upsert(s: Session) -> Any:
    ins = upsert(s, _LATEST)
    table = _LATEST
    newer = (ins.excluded.step > table.c.step) | (
        (ins.excluded.step == table.c.step) & (ins.excluded.time >= table.c.time))
    return ins.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"step": ins.excluded.step, "value": ins.excluded.value, "time": ins.excluded.time},
        where=newer)


def _when(value: str | float) -> datetime:
    try:
        if isinstance(value, float):
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        return datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(f"cannot read time {value!r}: give epoch seconds or an ISO date "
                              "such as '2026-01-31T12:00:00'") from None


def _apply_clause(q: Any, c: Clause) -> Any:
    """Attribute, param and tag clauses (metric clauses are joined in `search_runs`)."""
    if c.scope == "attributes":
        col = _ATTR_COLUMNS[c.key]
        value: Any = c.value
        if c.key in ("created_at", "ended_at"):
            value = _when(c.value)
        elif isinstance(value, float):
            value = str(int(value)) if value.is_integer() else str(value)
        return q.where(compare(col, c.op, value))
    if c.scope == "params":
        p = aliased(ParamRow)
        cond = (compare(p.num, c.op, c.value) if isinstance(c.value, float)
                else compare(p.text, c.op, c.value))
        return q.join(p, sa.and_(p.run_id == RunRow.id, p.key == c.key, cond))
    t = aliased(TagRow)
    return q.join(t, sa.and_(t.run_id == RunRow.id, t.key == c.key, compare(t.value, c.op, c.value)))


def _sort_columns(k: SortKey) -> tuple[list[Any], Any, Any]:
    """The columns to sort by, and the table (with its join condition) they come from."""
    if k.scope == "attributes":
        return [_ATTR_COLUMNS[k.key]], None, None
    if k.scope == "metrics":
        m = aliased(LatestMetricRow)
        return [m.value], m, sa.and_(m.run_id == RunRow.id, m.key == k.key)
    if k.scope == "params":
        p = aliased(ParamRow)
        return [p.num, p.text], p, sa.and_(p.run_id == RunRow.id, p.key == k.key)
    t = aliased(TagRow)
    return [t.value], t, sa.and_(t.run_id == RunRow.id, t.key == k.key)


def _ended(row: RunRow, what: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"run {row.id!r} already ended as {row.status!r}"
        f"{f' at {row.ended_at:%Y-%m-%d %H:%M:%S}' if row.ended_at else ''}; an ended run is a "
        f"record and does not change: {what}", {"run_id": row.id, "status": row.status})
