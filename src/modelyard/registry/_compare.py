"""Runs side by side: params that differ and a summary of every metric series."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from modelyard.core.errors import InvalidArgument
from modelyard.registry._sql import SqlBase
from modelyard.registry.models import MetricSummary, RunComparison
from modelyard.registry.tables import LatestMetricRow, MetricRow, RunRow

if TYPE_CHECKING:
    from modelyard.registry.store import RegistryStore

MAX_COMPARED = 100


class CompareSql(SqlBase):
    def metric_summaries(self, project: str,
                         run_ids: list[str]) -> dict[str, dict[str, MetricSummary]]:
        # one aggregate over the series plus the latest points, whatever the series' lengths
        out: dict[str, dict[str, MetricSummary]] = {r: {} for r in run_ids}
        m, latest = MetricRow, LatestMetricRow
        q = (sa.select(m.run_id, m.key, sa.func.min(m.value), sa.func.max(m.value),
                       sa.func.count(), latest.value)
             .join(RunRow, RunRow.id == m.run_id)
             .join(latest, sa.and_(latest.run_id == m.run_id, latest.key == m.key))
             .where(RunRow.project == project, m.run_id.in_(run_ids))
             .group_by(m.run_id, m.key, latest.value))
        with self.db.session() as s:
            for run_id, key, lo, hi, n, last in s.execute(q):
                out[run_id][key] = MetricSummary(last=last, min=lo, max=hi, steps=n)
        return out


def compare(store: RegistryStore, project: str, run_ids: list[str]) -> RunComparison:
    """Every run must exist in the project (NotFound names the first that does not)."""
    ids = list(dict.fromkeys(run_ids))  # a run named twice is shown once
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidArgument(f"compare 2 to {MAX_COMPARED} distinct runs, not {len(ids)}",
                              {"field": "run_ids"})
    runs = [store.get_run(project, r) for r in ids]
    keys = sorted({k for r in runs for k in r.params})
    params: dict[str, list[Any]] = {k: [r.params.get(k) for r in runs] for k in keys}
    # a param one run lacks differs from one the others set
    differing = [k for k, vals in params.items()
                 if any(k not in r.params for r in runs) or len({_key(v) for v in vals}) > 1]
    summaries = store.metric_summaries(project, ids)
    metric_keys = sorted({k for s in summaries.values() for k in s})
    metrics = {k: [summaries[r].get(k) for r in ids] for k in metric_keys}
    return RunComparison(runs=runs, params=params, differing_params=differing, metrics=metrics)


def _key(value: Any) -> str:
    return repr(value)  # lists and dicts are unhashable
