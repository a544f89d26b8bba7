"""modelyard objects in MLflow's JSON (the proto3 JSON its client parses)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelyard.mlflow_compat.models import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    Experiment,
    LoggedModel,
)
from modelyard.registry import MetricPoint, Model, ModelVersion, Run

RUN_NAME_TAG = "mlflow.runName"


def ms(when: datetime | None) -> int | None:
    if when is None:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def kv(items: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": k, "value": v if isinstance(v, str) else str(v)} for k, v in items.items()]


def artifact_root(experiment_id: str, run_id: str) -> str:
    """Where a run's files live in the artifact tree (MLflow server's own layout)."""
    return f"{experiment_id}/{run_id}/artifacts"


def experiment(e: Experiment) -> dict[str, Any]:
    name = DEFAULT_EXPERIMENT_NAME if e.id == DEFAULT_EXPERIMENT_ID else e.name
    out: dict[str, Any] = {"experiment_id": e.id, "name": name,
                           "artifact_location": f"mlflow-artifacts:/{e.id}",
                           "lifecycle_stage": "active", "tags": kv(e.tags)}
    if e.created_at is not None:
        out["creation_time"] = out["last_update_time"] = ms(e.created_at)
    return out


def run(r: Run, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": r.id, "run_uuid": r.id, "run_name": r.tags.get(RUN_NAME_TAG, r.id),
        "experiment_id": experiment_id, "user_id": r.user, "status": r.status.upper(),
        "start_time": ms(r.created_at),
        "artifact_uri": f"mlflow-artifacts:/{artifact_root(experiment_id, r.id)}",
        "lifecycle_stage": "active"}
    if r.ended_at is not None:
        info["end_time"] = ms(r.ended_at)
    # a run holds the latest value of each series; its step and time come with the history
    stamp = ms(r.ended_at or r.created_at)
    metrics = [{"key": k, "value": v, "timestamp": stamp, "step": 0} for k, v in r.metrics.items()]
    return {"info": info, "data": {"metrics": metrics, "params": kv(r.params),
                                   "tags": kv(r.tags)}}


def metric(p: MetricPoint) -> dict[str, Any]:
    return {"key": p.key, "value": p.value, "timestamp": int(p.time * 1000), "step": p.step}


def model_version(v: ModelVersion, source: str) -> dict[str, Any]:
    return {"name": v.model, "version": str(v.version), "creation_timestamp": ms(v.created_at),
            "last_updated_timestamp": ms(v.created_at), "user_id": v.created_by,
            "current_stage": "None", "description": "", "source": source,
            "run_id": v.run_id or "", "status": "READY", "aliases": v.aliases, "tags": []}


def registered_model(m: Model, latest: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": m.name, "creation_timestamp": ms(m.created_at),
            "last_updated_timestamp": ms(m.created_at), "user_id": m.created_by,
            "description": "", "latest_versions": latest or [], "tags": [],
            "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())]}


def logged_model(m: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": m.id, "experiment_id": m.experiment_id, "name": m.name,
        "creation_timestamp_ms": ms(m.created_at), "last_updated_timestamp_ms": ms(m.updated_at),
        "artifact_uri": f"mlflow-artifacts:/{m.artifact_root}", "status": m.status,
        "tags": kv(m.tags)}
    if m.source_run_id:
        info["source_run_id"] = m.source_run_id
    if m.model_type:
        info["model_type"] = m.model_type
    return {"info": info, "data": {"params": kv(m.params), "metrics": []}}
