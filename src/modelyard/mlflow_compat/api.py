"""MLflow's tracking REST API, served inside each project: point MLFLOW_TRACKING_URI at
`http://HOST:PORT/api/v1/projects/PROJECT/mlflow` and the `mlflow` client's calls land here
(under the same project path as every other route, so the same access checks cover them).

Routes are MLflow's (`/api/2.0/mlflow/...`, `/api/2.0/mlflow-artifacts/...`); anything else
under `/api/` answers MLflow's NOT_IMPLEMENTED (501) naming the call.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from modelyard.core.errors import InvalidArgument, Unimplemented
from modelyard.mlflow_compat import _wire as wire
from modelyard.mlflow_compat._errors import MlflowRoute
from modelyard.mlflow_compat.models import (
    AliasIn,
    DeleteTag,
    ExperimentCreate,
    ExperimentSearch,
    ExperimentTag,
    LogBatch,
    LoggedModelCreate,
    LoggedModelFinalize,
    LoggedModelParams,
    LoggedModelSearch,
    LoggedModelTags,
    LogInputs,
    LogMetric,
    LogParam,
    MetricIn,
    ModelSearchIn,
    RegisteredModelIn,
    RunCreateIn,
    RunRef,
    RunSearchIn,
    RunUpdate,
    VersionCreateIn,
)
from modelyard.mlflow_compat.service import MlflowService
from modelyard.server.deps import Access, Editor, PlatformDep, Viewer
from modelyard.server.uploads import receive_into

BASE = "/api/v1/projects/{project}/mlflow"  # MLFLOW_TRACKING_URI
router = APIRouter(prefix=f"{BASE}/api/2.0", tags=["mlflow"], route_class=MlflowRoute)
# mounted after `router`: what it does not match
fallback_router = APIRouter(prefix=f"{BASE}/api", route_class=MlflowRoute,
                            include_in_schema=False)
T = "/mlflow"  # tracking and model registry
A = "/mlflow-artifacts/artifacts"  # proxied artifacts
Json = dict[str, Any]
CHUNK = 1024 * 1024


def _svc(platform: Any) -> MlflowService:
    return cast(MlflowService, platform.mlflow)


def _run_id(body: RunRef) -> str:
    if not (body.run_id or body.run_uuid):
        raise InvalidArgument("run_id is required")
    return body.run_id or body.run_uuid


def _ts(m: MetricIn) -> tuple[str, int, float, float | None]:
    return (m.key, m.step, m.value, m.timestamp / 1000 if m.timestamp is not None else None)


def _kv(items: list[Any]) -> dict[str, str]:
    return {i.key: i.value for i in items}


def _run(svc: MlflowService, access: Access, run_id: str) -> Json:
    run, exp_id = svc.get_run(access.project, run_id)
    return {"run": wire.run(run, exp_id)}


# experiments
@router.post(f"{T}/experiments/create")
def create_experiment(body: ExperimentCreate, access: Editor, platform: PlatformDep) -> Json:
    e = _svc(platform).create_experiment(access.project, body.name, _kv(body.tags))
    return {"experiment_id": e.id}


@router.get(f"{T}/experiments/get")
def get_experiment(experiment_id: str, access: Viewer, platform: PlatformDep) -> Json:
    return {"experiment": wire.experiment(_svc(platform).get_experiment(access.project,
                                                                        experiment_id))}


@router.get(f"{T}/experiments/get-by-name")
def get_experiment_by_name(experiment_name: str, access: Viewer, platform: PlatformDep) -> Json:
    e = _svc(platform).get_experiment_by_name(access.project, experiment_name)
    return {"experiment": wire.experiment(e)}


@router.post(f"{T}/experiments/search")
def search_experiments(body: ExperimentSearch, access: Viewer, platform: PlatformDep) -> Json:
    if body.filter:
        raise InvalidArgument("experiments are listed without a filter here: drop filter_string")
    token = body.page_token or "0"
    if not token.isdigit() or len(token) > 15:
        raise InvalidArgument("page_token is not one this server gave out")
    offset = int(token)
    found = _svc(platform).search_experiments(access.project, offset, body.max_results)
    out: Json = {"experiments": [wire.experiment(e) for e in found]}
    if len(found) == body.max_results:
        out["next_page_token"] = str(offset + len(found))
    return out


@router.post(f"{T}/experiments/set-experiment-tag")
def set_experiment_tag(body: ExperimentTag, access: Editor, platform: PlatformDep) -> Json:
    _svc(platform).set_experiment_tag(access.project, body.experiment_id, body.key, body.value)
    return {}


# runs
@router.post(f"{T}/runs/create")
def create_run(body: RunCreateIn, access: Editor, platform: PlatformDep) -> Json:
    svc = _svc(platform)
    run = svc.create_run(access.project, access.user, body.experiment_id, body.run_name,
                         _kv(body.tags))
    return {"run": wire.run(run, body.experiment_id or "0")}


@router.get(f"{T}/runs/get")
def get_run(access: Viewer, platform: PlatformDep, run_id: str = "", run_uuid: str = "") -> Json:
    return _run(_svc(platform), access, _run_id(RunRef(run_id=run_id, run_uuid=run_uuid)))


@router.post(f"{T}/runs/update")
def update_run(body: RunUpdate, access: Editor, platform: PlatformDep) -> Json:
    svc = _svc(platform)
    run_id = _run_id(RunRef(run_id=body.run_id, run_uuid=body.run_uuid))
    svc.update_run(access.project, run_id, body.status, body.run_name)
    return {"run_info": _run(svc, access, run_id)["run"]["info"]}


@router.post(f"{T}/runs/log-metric")
def log_metric(body: LogMetric, access: Editor, platform: PlatformDep) -> Json:
    svc, run_id = _svc(platform), _run_id(body)
    if body.model_id:
        svc.link_metrics(access.project, run_id, [_ts(body)])  # type: ignore[list-item]
    else:
        svc.log_batch(access.project, run_id, {}, {}, [_ts(body)])  # type: ignore[list-item]
    return {}


@router.post(f"{T}/runs/log-parameter")
def log_param(body: LogParam, access: Editor, platform: PlatformDep) -> Json:
    _svc(platform).log_batch(access.project, _run_id(body), {body.key: body.value}, {}, [])
    return {}


@router.post(f"{T}/runs/set-tag")
def set_tag(body: LogParam, access: Editor, platform: PlatformDep) -> Json:
    _svc(platform).log_batch(access.project, _run_id(body), {}, {body.key: body.value}, [])
    return {}


@router.post(f"{T}/runs/delete-tag")
def delete_tag(body: DeleteTag, access: Editor, platform: PlatformDep) -> Json:
    _svc(platform).delete_tag(access.project, _run_id(body), body.key)
    return {}


@router.post(f"{T}/runs/log-batch")
def log_batch(body: LogBatch, access: Editor, platform: PlatformDep) -> Json:
    svc = _svc(platform)
    svc.log_batch(access.project, body.run_id, _kv(body.params), _kv(body.tags),
                  [_ts(m) for m in body.metrics if not m.model_id])  # type: ignore[misc]
    if linked := [_ts(m) for m in body.metrics if m.model_id]:
        svc.link_metrics(access.project, body.run_id, linked)  # type: ignore[arg-type]
    return {}


@router.post(f"{T}/runs/search")
def search_runs(body: RunSearchIn, access: Viewer, platform: PlatformDep) -> Json:
    runs, token = _svc(platform).search_runs(access.project, body.experiment_ids, body.filter,
                                             body.order_by, min(body.max_results, 1000),
                                             body.page_token)
    out: Json = {"runs": [wire.run(r, e) for r, e in runs]}
    if token:
        out["next_page_token"] = token
    return out


@router.post(f"{T}/runs/log-inputs")
def log_inputs(body: LogInputs, access: Editor, platform: PlatformDep) -> Json:
    _svc(platform).log_inputs(access.project, body.run_id, [
        (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source)
        for d in body.datasets])
    return {}


@router.post(f"{T}/runs/outputs")
def log_outputs(body: RunRef, access: Editor, platform: PlatformDep) -> Json:
    # the logged model already names its run (source_run_id); only the run's check is left
    _svc(platform).get_run(access.project, _run_id(body))
    return {}


@router.get(f"{T}/metrics/get-history")
def metric_history(metric_key: str, access: Viewer, platform: PlatformDep, run_id: str = "",
                   run_uuid: str = "",
                   max_results: Annotated[int | None, Query(ge=1, le=10**9)] = None) -> Json:
    points = _svc(platform).metric_history(
        access.project, _run_id(RunRef(run_id=run_id, run_uuid=run_uuid)), metric_key)
    return {"metrics": [wire.metric(p) for p in points[:max_results]]}


# proxied artifacts
@router.put(f"{A}/{{path:path}}")
async def upload_artifact(path: str, request: Request, access: Editor,
                          platform: PlatformDep) -> Json:
    media_type = request.headers.get("content-type") or "application/octet-stream"
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
        await receive_into(request, cast(BinaryIO, spool))
        spool.seek(0)
        await run_in_threadpool(_svc(platform).put_artifact, access.project, path,
                                cast(BinaryIO, spool), media_type, access.user)
    return {}


@router.get(A)
def list_artifacts(access: Viewer, platform: PlatformDep, path: str = "") -> Json:
    return {"files": _svc(platform).list_artifacts(access.project, path)}


@router.get(f"{A}/{{path:path}}")
def download_artifact(path: str, access: Viewer, platform: PlatformDep) -> StreamingResponse:
    found, stream = _svc(platform).open_artifact(access.project, path)
    return StreamingResponse(_chunks(stream), media_type="application/octet-stream",
                             headers={"Content-Length": str(found.size)})


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        stream.close()


# the model registry
@router.post(f"{T}/registered-models/create")
def create_registered_model(body: RegisteredModelIn, access: Editor,
                            platform: PlatformDep) -> Json:
    m = _svc(platform).create_registered_model(access.project, body.name, access.user)
    return {"registered_model": wire.registered_model(m)}


@router.get(f"{T}/registered-models/get")
def get_registered_model(name: str, access: Viewer, platform: PlatformDep) -> Json:
    svc = _svc(platform)
    m = platform.registry.get_model(access.project, name)
    latest = [wire.model_version(v, svc.version_source(access.project, v))
              for v in svc.latest_versions(access.project, name)]
    return {"registered_model": wire.registered_model(m, latest)}


@router.post(f"{T}/registered-models/search")
def search_registered_models(body: ModelSearchIn, access: Viewer, platform: PlatformDep) -> Json:
    found = _svc(platform).search_registered_models(access.project, body.filter)
    return {"registered_models": [wire.registered_model(m) for m in found[:body.max_results]]}


@router.post(f"{T}/model-versions/create")
def create_model_version(body: VersionCreateIn, access: Editor, platform: PlatformDep) -> Json:
    v, source = _svc(platform).create_model_version(access.project, body.name, body.source,
                                                    body.run_id, body.model_id, access.user)
    return {"model_version": wire.model_version(v, source)}


@router.get(f"{T}/model-versions/get")
def get_model_version(name: str, version: Annotated[int, Query(ge=1, le=2**31 - 1)],
                      access: Viewer, platform: PlatformDep) -> Json:
    v = platform.registry.get_version(access.project, name, version)
    return {"model_version": wire.model_version(v, _svc(platform).version_source(access.project, v))}


@router.get(f"{T}/model-versions/get-download-uri")
def get_download_uri(name: str, version: Annotated[int, Query(ge=1, le=2**31 - 1)],
                     access: Viewer, platform: PlatformDep) -> Json:
    return {"artifact_uri": _svc(platform).download_uri(access.project, name, version)}


@router.post(f"{T}/registered-models/alias")
def set_alias(body: AliasIn, access: Editor, platform: PlatformDep) -> Json:
    platform.registry.set_alias(access.project, body.name, body.alias, body.version, access.user)
    return {}


@router.delete(f"{T}/registered-models/alias")
def delete_alias(name: str, alias: str, access: Editor, platform: PlatformDep) -> Json:
    platform.registry.delete_alias(access.project, name, alias, access.user)
    return {}


@router.get(f"{T}/registered-models/alias")
def get_version_by_alias(name: str, alias: str, access: Viewer, platform: PlatformDep) -> Json:
    v = platform.registry.resolve(access.project, f"{name}@{alias}")
    return {"model_version": wire.model_version(v, _svc(platform).version_source(access.project, v))}


# logged models (MLflow 3's log_model)
@router.post(f"{T}/logged-models")
def create_logged_model(body: LoggedModelCreate, access: Editor, platform: PlatformDep) -> Json:
    m = _svc(platform).create_logged_model(access.project, body.experiment_id, body.name,
                                           body.source_run_id, body.model_type,
                                           _kv(body.tags), _kv(body.params))
    return {"model": wire.logged_model(m)}


@router.post(f"{T}/logged-models/search")
def search_logged_models(body: LoggedModelSearch, access: Viewer, platform: PlatformDep) -> Json:
    found = _svc(platform).search_logged_models(access.project, body.experiment_ids, body.filter,
                                                body.max_results)
    return {"models": [wire.logged_model(m) for m in found]}


@router.get(f"{T}/logged-models/{{model_id}}")
def get_logged_model(model_id: str, access: Viewer, platform: PlatformDep) -> Json:
    return {"model": wire.logged_model(_svc(platform).get_logged_model(access.project, model_id))}


@router.patch(f"{T}/logged-models/{{model_id}}")
def finalize_logged_model(model_id: str, body: LoggedModelFinalize, access: Editor,
                          platform: PlatformDep) -> Json:
    m = _svc(platform).update_logged_model(access.project, model_id, status=body.status)
    return {"model": wire.logged_model(m)}


@router.patch(f"{T}/logged-models/{{model_id}}/tags")
def set_logged_model_tags(model_id: str, body: LoggedModelTags, access: Editor,
                          platform: PlatformDep) -> Json:
    _svc(platform).update_logged_model(access.project, model_id, tags=_kv(body.tags))
    return {}


@router.post(f"{T}/logged-models/{{model_id}}/params")
def log_logged_model_params(model_id: str, body: LoggedModelParams, access: Editor,
                            platform: PlatformDep) -> Json:
    _svc(platform).update_logged_model(access.project, model_id, params=_kv(body.params))
    return {}


# everything else of MLflow's API: its error shape, naming the call
def _unsupported(request: Request, rest: str) -> Json:
    raise Unimplemented(f"modelyard does not serve MLflow's {request.method} /api/{rest[:200]}; "
                        "the MLflow calls it serves are listed in the README (Logging from "
                        "MLflow code)", {"endpoint": f"/api/{rest[:200]}"})


@fallback_router.api_route("/{rest:path}", methods=["GET", "POST"])
def unsupported_read(rest: str, request: Request, access: Viewer) -> Json:
    return _unsupported(request, rest)


@fallback_router.api_route("/{rest:path}", methods=["PUT", "PATCH", "DELETE"])
def unsupported_write(rest: str, request: Request, access: Editor) -> Json:
    return _unsupported(request, rest)

