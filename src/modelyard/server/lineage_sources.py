"""Lineage sources of the components that keep no lineage of their own: each describes its
nodes from its owner's public service, so the registry's walk can show hashes and times
without reading another component's tables. Wired by `Platform`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.core.errors import NotFound
from modelyard.registry import LineageEdge

if TYPE_CHECKING:
    from modelyard.datasets.service import DatasetService
    from modelyard.hpo.service import HpoService
    from modelyard.training.service import TrainingService


class _Source:
    """Resolve and describe one id at a time; no edges beyond the edge table's."""

    def _one(self, project: str, node_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def resolve(self, project: str, node_id: str) -> str:
        self._one(project, node_id)
        return node_id

    def describe(self, project: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for i in ids:
            try:
                out[i] = self._one(project, i)
            except NotFound:  # gone since the edge was recorded: the node stays, bare
                pass
        return out

    def edges(self, project: str, ids: list[str], upstream: bool) -> list[LineageEdge]:
        return []


class SnapshotSource(_Source):
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets

    def _one(self, project: str, node_id: str) -> dict[str, Any]:
        s = self.datasets.get_snapshot(project, node_id)
        return {"dataset": s.dataset, "version": s.version, "commit_id": s.commit_id,
                "hash": s.hash, "seed": s.seed, "fractions": s.fractions, "filters": s.config,
                "split_sizes": s.split_sizes, "created_at": s.created_at.isoformat()}


class DatasetVersionSource(_Source):
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets

    def _one(self, project: str, node_id: str) -> dict[str, Any]:
        name, _, num = node_id.rpartition("@")
        if not name or not num.isdigit():
            raise NotFound(f"no dataset version {node_id[:100]!r}: write NAME@VERSION")
        c = self.datasets.get_version(project, name, int(num))
        return {"commit_id": c.id, "message": c.message, "content_hash": c.content_hash,
                "author": c.author, "rows": c.row_count, "created_at": c.created_at.isoformat()}


class JobSource(_Source):
    def __init__(self, training: TrainingService) -> None:
        self.training = training

    def _one(self, project: str, node_id: str) -> dict[str, Any]:
        j = self.training.get(project, node_id)
        return {"name": j.name, "state": j.state, "trainer": j.trainer, "code_hash": j.code_hash,
                "spec": {"hyperparameters": j.hyperparameters,
                         "resources": j.resources.model_dump(mode="json"),
                         "dataset_snapshot": j.dataset_snapshot, "timeout_s": j.timeout_s},
                "run_id": j.run_id, "created_at": j.created_at.isoformat(),
                "finished_at": j.finished_at.isoformat() if j.finished_at else None}


class StudySource(_Source):
    def __init__(self, hpo: HpoService) -> None:
        self.hpo = hpo

    def _one(self, project: str, node_id: str) -> dict[str, Any]:
        s = self.hpo.get(project, node_id)
        trials = [{"number": t.number, "job_id": t.job_id, "state": t.state, "params": t.params,
                   "value": t.value} for t in self.hpo.trials(project, node_id)]
        return {"name": s.name, "state": s.state, "spec": s.spec.model_dump(mode="json"),
                "created_at": s.created_at.isoformat(), "trials": trials}
