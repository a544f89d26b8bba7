"""SQL persistence of the lineage graph: typed edges between (kind, id) nodes."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from modelyard.core.ids import utcnow
from modelyard.registry._sql import SqlBase, chunks, insert_edges
from modelyard.registry.models import LineageEdge
from modelyard.registry.tables import (
    EdgeRow,
    ExperimentRow,
    LatestMetricRow,
    ModelRow,
    ParamRow,
    RunRow,
    VersionRow,
)


class LineageSql(SqlBase):
    def add_edges(self, project: str, edges: list[LineageEdge]) -> None:
        with self.db.session() as s:
            insert_edges(s, project, edges, utcnow())

    def edges_of(self, project: str, nodes: list[tuple[str, str]], upstream: bool) -> list[LineageEdge]:
        kind_col, id_col = (EdgeRow.dst_kind, EdgeRow.dst_id) if upstream else (
            EdgeRow.src_kind, EdgeRow.src_id)
        out: list[LineageEdge] = []
        with self.db.session() as s:
            for part in chunks(nodes, 200):
                rows = s.scalars(sa.select(EdgeRow).where(
                    EdgeRow.project == project, sa.tuple_(kind_col, id_col).in_(part)
                ).order_by(EdgeRow.id)).all()
                out += [LineageEdge(src_kind=r.src_kind, src_id=r.src_id, dst_kind=r.dst_kind,
                                    dst_id=r.dst_id, relation=r.relation,
                                    created_at=r.created_at) for r in rows]
        return out

    def is_referenced(self, project: str, kind: str, node_id: str) -> bool:
        with self.db.session() as s:
            q = sa.select(EdgeRow.id).where(EdgeRow.project == project, sa.or_(
                sa.and_(EdgeRow.src_kind == kind, EdgeRow.src_id == node_id),
                sa.and_(EdgeRow.dst_kind == kind, EdgeRow.dst_id == node_id))).limit(1)
            return s.scalar(q) is not None

    def node_attrs(self, project: str, nodes: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        run_ids = [i for k, i in nodes if k == "run"]
        versions = [i for k, i in nodes if k == "model_version"]
        with self.db.session() as s:
            for part in chunks(run_ids):
                for run_id, status, exp, created, ended, code in s.execute(sa.select(
                        RunRow.id, RunRow.status, ExperimentRow.name, RunRow.created_at,
                        RunRow.ended_at, RunRow.code_hash).join(
                        ExperimentRow, ExperimentRow.id == RunRow.experiment_id).where(
                        RunRow.project == project, RunRow.id.in_(part))):
                    out[("run", run_id)] = {
                        "status": status, "experiment": exp, "params": {}, "metrics": {},
                        "code_hash": code, "created_at": created.isoformat(),
                        "ended_at": ended.isoformat() if ended else None}
                for run_id, key, value in s.execute(sa.select(
                        LatestMetricRow.run_id, LatestMetricRow.key, LatestMetricRow.value).where(
                        LatestMetricRow.run_id.in_(part))):
                    if ("run", run_id) in out:  # final metrics: each series' latest point
                        out[("run", run_id)]["metrics"][key] = value
                for p_run, p_key, p_value in s.execute(sa.select(
                        ParamRow.run_id, ParamRow.key, ParamRow.value).where(ParamRow.run_id.in_(part))):
                    if ("run", p_run) in out:
                        out[("run", p_run)]["params"][p_key] = json.loads(p_value)
            for ref in versions:
                name, _, num = ref.rpartition("@")
                if not num.isdigit():
                    continue
                row = s.execute(sa.select(VersionRow).join(
                    ModelRow, ModelRow.id == VersionRow.model_id).where(
                    ModelRow.project == project, ModelRow.name == name,
                    VersionRow.version == int(num))).scalar()
                if row is not None:
                    out[("model_version", ref)] = {
                        "framework": row.framework, "metrics": row.metrics, "params": row.params,
                        "artifacts": row.artifacts, "code_hash": row.code_hash,
                        "description": row.description, "tags": row.tags or {},
                        "created_at": row.created_at.isoformat(),
                        "archived_at": row.archived_at.isoformat() if row.archived_at else None}
        return out
