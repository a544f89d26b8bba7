"""HTTP routes of the registry: runs, metric series, artifacts, models, aliases, lineage."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from modelyard.core.errors import InvalidArgument
from modelyard.registry.models import (
    AliasMove,
    AliasSet,
    Artifact,
    EdgeCreate,
    GcReport,
    LineageEdge,
    LineageGraph,
    MetricBatch,
    MetricPoint,
    Model,
    ModelCreate,
    ModelVersion,
    Run,
    RunCompare,
    RunComparison,
    RunCreate,
    RunFinish,
    RunSearch,
    RunSearchResult,
    VersionCreate,
    VersionUpdate,
)
from modelyard.registry.service import parse_node
from modelyard.server.deps import Admin, Editor, PlatformDep, Viewer
from modelyard.server.uploads import receive_into

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["registry"])
CHUNK = 1024 * 1024


# runs and metric series
@router.post("/runs", status_code=status.HTTP_201_CREATED)
def create_run(body: RunCreate, access: Editor, platform: PlatformDep) -> Run:
    return platform.registry.create_run(access.project, body.experiment, body.params, body.tags,
                                        body.job_id, body.code_hash, body.dataset_snapshot,
                                        access.user)


@router.post("/runs:search")
def search_runs(body: RunSearch, access: Viewer, platform: PlatformDep) -> RunSearchResult:
    return platform.registry.search_runs(access.project, body.filter, body.order_by, body.limit,
                                         body.page_token, body.fields, body.experiment)


@router.get("/runs")
def list_runs(access: Viewer, platform: PlatformDep, experiment: str | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              page_token: str | None = None) -> RunSearchResult:
    return platform.registry.search_runs(access.project, None, None, limit, page_token, None,
                                         experiment)


@router.post("/runs:compare")
def compare_runs(body: RunCompare, access: Viewer, platform: PlatformDep) -> RunComparison:
    """Params (and which differ) and last/min/max of every metric series, run by run."""
    return platform.registry.compare_runs(access.project, body.run_ids)


@router.get("/runs/{run_id}")
def get_run(run_id: str, access: Viewer, platform: PlatformDep) -> Run:
    return platform.registry.get_run(access.project, run_id)


@router.post("/runs/{run_id}/finish")
def finish_run(run_id: str, body: RunFinish, access: Editor, platform: PlatformDep) -> Run:
    return platform.registry.finish_run(access.project, run_id, body.status)


@router.post("/runs/{run_id}/metrics")
def log_metrics(run_id: str, body: MetricBatch, access: Editor, platform: PlatformDep) -> dict[str, int]:
    points = [(p.key, p.step, p.value, p.time) for p in body.points]
    return {"logged": platform.registry.log_metrics(access.project, run_id, points)}


@router.get("/runs/{run_id}/metrics")
def get_metric_series(run_id: str, key: str, access: Viewer,
                      platform: PlatformDep) -> list[MetricPoint]:
    return platform.registry.get_metric_series(access.project, run_id, key)


# artifacts
@router.post("/artifacts", status_code=status.HTTP_201_CREATED)
async def upload_artifact(request: Request, access: Editor, platform: PlatformDep,
                          name: str = "", sha256: str | None = None) -> Artifact:
    """The request body is the artifact's bytes, streamed; `Content-Type` is its media type.
    A body cut short (fewer bytes than Content-Length, a dropped connection, or a digest other
    than `sha256`) stores nothing."""
    media_type = request.headers.get("content-type") or "application/octet-stream"
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
        await receive_into(request, cast(BinaryIO, spool))
        spool.seek(0)
        return await run_in_threadpool(platform.registry.put_artifact, access.project,
                                       cast(BinaryIO, spool),
                                       media_type, name, access.user, None, sha256)


@router.get("/artifacts")
def list_artifacts(access: Viewer, platform: PlatformDep,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=2**53)] = 0) -> list[Artifact]:
    return platform.registry.list_artifacts(access.project, limit, offset)


def _headers(a: Artifact) -> dict[str, str]:
    return {"Content-Length": str(a.size), "ETag": f'"{a.digest}"', "X-Content-SHA256": a.digest,
            "Cache-Control": "private, max-age=31536000, immutable"}


@router.head("/artifacts/{digest}")
def head_artifact(digest: str, access: Viewer, platform: PlatformDep) -> Response:
    a = platform.registry.get_artifact(access.project, digest)
    return Response(status_code=200, headers=_headers(a), media_type=a.media_type)


@router.get("/artifacts/{digest}")
def download_artifact(digest: str, access: Viewer, platform: PlatformDep) -> StreamingResponse:
    a = platform.registry.get_artifact(access.project, digest)
    stream = platform.registry.open_artifact(access.project, digest)
    return StreamingResponse(_chunks(stream), media_type=a.media_type, headers=_headers(a))


@router.post("/artifacts:gc")
def gc_artifacts(access: Admin, platform: PlatformDep,
                 retention_s: Annotated[float, Query(ge=0, le=100 * 365 * 86400)] = 7 * 86400) -> GcReport:
    """Forget the project's artifacts no model version holds, older than `retention_s`."""
    return platform.registry.gc_artifacts(retention_s, access.project)


@router.get("/artifacts/{digest}/meta")
def artifact_meta(digest: str, access: Viewer, platform: PlatformDep) -> Artifact:
    return platform.registry.get_artifact(access.project, digest)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        stream.close()


# models, versions, aliases
@router.post("/models", status_code=status.HTTP_201_CREATED)
def create_model(body: ModelCreate, access: Editor, platform: PlatformDep) -> Model:
    return platform.registry.create_model(access.project, body.name, access.user)


@router.get("/models")
def list_models(access: Viewer, platform: PlatformDep) -> list[Model]:
    return platform.registry.list_models(access.project)


@router.get("/models/{name}")
def get_model(name: str, access: Viewer, platform: PlatformDep) -> Model:
    return platform.registry.get_model(access.project, name)


@router.post("/models/{name}/versions", status_code=status.HTTP_201_CREATED)
def register_version(name: str, body: VersionCreate, access: Editor,
                     platform: PlatformDep) -> ModelVersion:
    return platform.registry.register_version(access.project, name, user=access.user,
                                              **body.model_dump())


@router.get("/models/{name}/versions")
def list_versions(name: str, access: Viewer, platform: PlatformDep) -> list[ModelVersion]:
    return platform.registry.list_versions(access.project, name)


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, access: Viewer, platform: PlatformDep) -> ModelVersion:
    return platform.registry.get_version(access.project, name, version)


@router.patch("/models/{name}/versions/{version}")
def update_version(name: str, version: int, body: VersionUpdate, access: Editor,
                   platform: PlatformDep) -> ModelVersion:
    """Description, tags (replacing all), archive/restore; archiving a version an alias or a
    deployment uses is a 409 naming them."""
    return platform.registry.update_version(access.project, name, version, body.description,
                                            body.tags, body.archived)


@router.delete("/models/{name}/versions/{version}")
def delete_version(name: str, version: int, access: Editor, platform: PlatformDep) -> ModelVersion:
    """409 naming the aliases and deployments that use the version, if any."""
    return platform.registry.delete_version(access.project, name, version)


@router.get("/models/{name}/resolve")
def resolve(name: str, access: Viewer, platform: PlatformDep, ref: str = "latest") -> ModelVersion:
    """`ref` is a version, an alias or `latest`, or a whole `NAME@...` reference."""
    full = ref if "@" in ref or ref == name else f"{name}@{ref}"
    if full.partition("@")[0] != name:
        raise InvalidArgument(f"reference {ref!r} names another model than {name!r}")
    return platform.registry.resolve(access.project, full)


@router.put("/models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasSet, access: Editor,
              platform: PlatformDep) -> AliasMove:
    return platform.registry.set_alias(access.project, name, alias, body.version, access.user)


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, access: Editor, platform: PlatformDep) -> AliasMove:
    return platform.registry.delete_alias(access.project, name, alias, access.user)


@router.get("/models/{name}/aliases")
def alias_history(name: str, access: Viewer, platform: PlatformDep,
                  alias: str | None = None) -> list[AliasMove]:
    return platform.registry.alias_history(access.project, name, alias)


# lineage
@router.post("/lineage/edges", status_code=status.HTTP_201_CREATED)
def add_edge(body: EdgeCreate, access: Editor, platform: PlatformDep) -> LineageEdge:
    return platform.registry.add_edge(access.project, body.src_kind, body.src_id, body.dst_kind,
                                      body.dst_id, body.relation, verify=True)


@router.get("/lineage")
def lineage(node: str, access: Viewer, platform: PlatformDep, direction: str = "upstream",
            depth: Annotated[int, Query(ge=1, le=50)] = 10) -> LineageGraph:
    kind, node_id = parse_node(node)
    return platform.registry.lineage(access.project, kind, node_id, direction, depth)


@router.get("/lineage/referenced")
def is_referenced(node: str, access: Viewer, platform: PlatformDep) -> dict[str, Any]:
    kind, node_id = parse_node(node)
    return {"node": f"{kind}:{node_id}",
            "referenced": platform.registry.is_referenced(access.project, kind, node_id)}
