"""Serving's part of the lineage graph: which deployments use a model version or follow an
alias (the registry's guards ask), and the `deployment` and `prediction` nodes.

A prediction node is derived from its event in the metrics store, never stored as edges: one
row per request would grow the edge table by the request rate. Its upstream edges (from its
deployment and the model version that answered) and the deployment's traffic split at that
time come from the event and the deployment's own history.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import NotFound
from modelyard.registry import LineageEdge
from modelyard.serving.models import Deployment, PredictionRecord

if TYPE_CHECKING:
    from modelyard.metrics import MetricsService, PredictionEvent
    from modelyard.registry import RegistryService
    from modelyard.serving.store import DeploymentStore

HISTORY = 1000  # deployment events read to find the split in force at a prediction's time


class ServingLineage:
    def __init__(self, store: DeploymentStore, registry: RegistryService,
                 metrics: MetricsService) -> None:
        self.store = store
        self.registry = registry
        self.metrics = metrics

    # -- DeploymentLookup -----------------------------------------------------------------------
    def deployments_using(self, project: str, model: str, version: int | None,
                          alias: str | None) -> list[str]:
        out = []
        for dep in self.store.list_deployments(project):
            if dep.model != model:
                continue
            if alias is not None and dep.model_ref == f"{model}@{alias}":
                out.append(dep.name)
            elif version is not None and version in self._versions(dep):
                out.append(dep.name)
        return sorted(out)

    def _versions(self, dep: Deployment) -> set[int]:
        used = {int(v) for v in dep.traffic or {}}
        if dep.shadow_version:
            used.add(dep.shadow_version)
        try:  # an alias that points nowhere routes nothing
            used.add(self.registry.resolve(dep.project, dep.model_ref).version)
        except NotFound:
            pass
        return used

    # -- the `deployment` and `prediction` sources ----------------------------------------------
    def deployment_source(self) -> DeploymentSource:
        return DeploymentSource(self)

    def prediction_source(self) -> PredictionSource:
        return PredictionSource(self)

    def by_name_or_id(self, project: str, ref: str) -> Deployment | None:
        for dep in self.store.list_deployments(project):
            if ref in (dep.id, dep.name):
                return dep
        return None

    def traffic_at(self, project: str, deployment: str, when: datetime) -> dict[str, Any]:
        """The deployment's routing in force at `when`: model_ref, traffic and shadow."""
        state: dict[str, Any] = {}
        for ev in reversed(self.store.events(project, deployment, HISTORY)):  # oldest first
            if ev.time > when:
                break
            for key in ("model_ref", "traffic", "shadow_version"):
                if key in ev.details:
                    state[key] = ev.details[key]
        return state


class DeploymentSource:
    def __init__(self, owner: ServingLineage) -> None:
        self.owner = owner

    def resolve(self, project: str, node_id: str) -> str:
        dep = self.owner.by_name_or_id(project, node_id)
        if dep is None:
            raise NotFound(f"no deployment {node_id[:100]!r} in project {project!r} (name or id)",
                           {"deployment": node_id[:100]})
        return dep.id

    def describe(self, project: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        wanted = set(ids)
        return {d.id: {"name": d.name, "model_ref": d.model_ref, "traffic": d.traffic,
                       "shadow_version": d.shadow_version, "created_at": d.created_at.isoformat(),
                       "updated_at": d.updated_at.isoformat()}
                for d in self.owner.store.list_deployments(project) if d.id in wanted}

    def edges(self, project: str, ids: list[str], upstream: bool) -> list[LineageEdge]:
        return []  # what a deployment serves is in the edge table (serving records it)


class PredictionSource:
    def __init__(self, owner: ServingLineage) -> None:
        self.owner = owner

    def _event(self, project: str, request_id: str) -> PredictionEvent:
        events = self.owner.metrics.find(project, request_id)
        return next((e for e in events if not e.shadow), events[0])

    def resolve(self, project: str, node_id: str) -> str:
        self._event(project, node_id)  # NotFound when no such request
        return node_id

    def describe(self, project: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for rid in ids:
            events = self.owner.metrics.find(project, rid)
            main = [e for e in events if not e.shadow] or events
            first = main[0]
            out[rid] = {
                "deployment": first.deployment, "model": first.model, "version": first.version,
                "time": first.time.isoformat(), "latency_ms": first.latency_ms,
                "outcome": first.outcome,
                "outputs": [{"label": e.label, "confidence": e.confidence} for e in main],
                "deployment_at_time": self.owner.traffic_at(project, first.deployment,
                                                            first.time)}
        return out

    def edges(self, project: str, ids: list[str], upstream: bool) -> list[LineageEdge]:
        if not upstream:
            return []  # nothing is made from a prediction
        out = []
        for rid in ids:
            e = self._event(project, rid)
            dep = self.owner.by_name_or_id(project, e.deployment)
            out += [LineageEdge(src_kind="deployment", src_id=dep.id if dep else e.deployment,
                                dst_kind="prediction", dst_id=rid, relation="served",
                                created_at=e.time),
                    LineageEdge(src_kind="model_version", src_id=f"{e.model}@{e.version}",
                                dst_kind="prediction", dst_id=rid, relation="answered",
                                created_at=e.time)]
        return out


def prediction_record(metrics: MetricsService, project: str, deployment: str,
                      request_id: str) -> PredictionRecord:
    events = [e for e in metrics.find(project, request_id) if e.deployment == deployment]
    main = [e for e in events if not e.shadow]
    if not main:
        raise NotFound(f"deployment {deployment!r} answered no request {request_id[:100]!r}",
                       {"deployment": deployment, "request_id": request_id[:100]})
    first = main[0]
    return PredictionRecord(
        request_id=request_id, deployment=deployment, model=first.model, version=first.version,
        time=first.time, latency_ms=first.latency_ms, outcome=first.outcome,
        outputs=[{"label": e.label, "confidence": e.confidence} for e in main],
        shadow=[{"version": e.version, "label": e.label, "confidence": e.confidence,
                 "latency_ms": e.latency_ms} for e in events if e.shadow])
