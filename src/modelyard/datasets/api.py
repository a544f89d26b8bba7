"""HTTP routes of the datasets component (thin: parse, call the service, return its models)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from modelyard.core.errors import InvalidArgument
from modelyard.datasets.models import (
    Commit,
    CommitRows,
    Dataset,
    DatasetCreate,
    DatasetPage,
    Diff,
    GcReport,
    ImportRequest,
    Snapshot,
    SnapshotRequest,
    check_tags,
)
from modelyard.server.deps import Admin, Editor, PlatformDep, Viewer
from modelyard.server.uploads import receive_into

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["datasets"])


@router.post("/datasets", status_code=status.HTTP_201_CREATED)
def create_dataset(body: DatasetCreate, access: Editor, platform: PlatformDep) -> Dataset:
    return platform.datasets.create_dataset(access.project, body, access.user)


@router.get("/datasets")
def list_datasets(access: Viewer, platform: PlatformDep, limit: int = Query(50, ge=1, le=1000),
                  page_token: str | None = None) -> DatasetPage:
    return platform.datasets.list_datasets(access.project, limit, page_token)


@router.post("/datasets/import", status_code=status.HTTP_201_CREATED)
def import_builtin(body: ImportRequest, access: Editor, platform: PlatformDep) -> Commit:
    return platform.datasets.import_builtin(access.project, body, access.user)


@router.post("/datasets/gc")
def collect_garbage(access: Admin, platform: PlatformDep,
                    retention_days: float = Query(7.0, ge=0, le=36_500)) -> GcReport:
    """Removes rows of old, unreferenced versions and purges soft-deleted datasets."""
    return platform.datasets.collect_garbage(access.project, retention_days * 86400)


@router.get("/datasets/{name}")
def get_dataset(name: str, access: Viewer, platform: PlatformDep) -> Dataset:
    return platform.datasets.get_dataset(access.project, name)


@router.delete("/datasets/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(name: str, access: Editor, platform: PlatformDep) -> None:
    platform.datasets.delete_dataset(access.project, name, access.user)


@router.post("/datasets/{name}/commits", status_code=status.HTTP_201_CREATED)
def commit_rows(name: str, body: CommitRows, access: Editor, platform: PlatformDep) -> Commit:
    return platform.datasets.commit_rows(access.project, name, body.rows, access.user, body.mode,
                                         body.message, body.tags, body.where, body.row_ids)


@router.post("/datasets/{name}/upload", status_code=status.HTTP_201_CREATED)
async def upload(name: str, request: Request, access: Editor, platform: PlatformDep,
                 format: Literal["csv", "json", "jsonl", "parquet"] = Query(...),
                 mode: Literal["append", "overwrite", "replace"] = "append", message: str = "",
                 tags: str = Query("", description="comma-separated"),
                 where: str | None = Query(None, max_length=2000,
                                           description="replace: a SQL filter of rows to remove"),
                 row_ids: str = Query("", max_length=100_000,
                                      description="replace: comma-separated row ids to remove"),
                 ) -> Commit:
    """The request body is the file; it is streamed to a temp file, never held whole. With
    mode=replace, the rows matching `where` or `row_ids` are removed and the file's rows added,
    as one version."""
    try:
        tag_list = check_tags([t for t in tags.split(",") if t])
    except ValueError as e:
        raise InvalidArgument(str(e), {"field": "tags"}) from e
    ids = [r for r in row_ids.split(",") if r] or None
    fd, tmp = tempfile.mkstemp(prefix="modelyard-upload-", suffix=f".{format}")
    try:
        with os.fdopen(fd, "wb") as f:
            await receive_into(request, f)
        return await run_in_threadpool(
            platform.datasets.commit_file, access.project, name, Path(tmp), format, access.user,
            mode, message, tag_list, where, ids)
    finally:
        Path(tmp).unlink(missing_ok=True)


@router.get("/datasets/{name}/versions")
def list_versions(name: str, access: Viewer, platform: PlatformDep) -> list[Commit]:
    return platform.datasets.list_versions(access.project, name)


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: int, access: Viewer, platform: PlatformDep) -> Commit:
    return platform.datasets.get_version(access.project, name, version)


@router.get("/datasets/{name}/stats")
def stats(name: str, access: Viewer, platform: PlatformDep,
          version: int | None = None) -> dict[str, Any]:
    return platform.datasets.stats(access.project, name, version)


@router.get("/datasets/{name}/rows")
def rows(name: str, access: Viewer, platform: PlatformDep, version: int | None = None,
         offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=1000)) -> list[dict[str, Any]]:
    return platform.datasets.rows(access.project, name, version, offset, limit)


@router.get("/datasets/{name}/diff")
def diff(name: str, access: Viewer, platform: PlatformDep,
         from_version: int = Query(..., alias="from", ge=1),
         to_version: int = Query(..., alias="to", ge=1)) -> Diff:
    return platform.datasets.diff(access.project, name, from_version, to_version)


@router.post("/datasets/{name}/snapshots", status_code=status.HTTP_201_CREATED)
def create_snapshot(name: str, body: SnapshotRequest, access: Editor, platform: PlatformDep,
                    response: Response) -> Snapshot:
    """201 when ready at once, 202 while it is materialized, 200 when an identical one exists."""
    snap = platform.datasets.create_snapshot(access.project, name, body, access.user)
    if snap.reused:
        response.status_code = status.HTTP_200_OK
    elif snap.status == "pending":
        response.status_code = status.HTTP_202_ACCEPTED
    return snap


@router.get("/datasets/{name}/snapshots")
def list_snapshots(name: str, access: Viewer, platform: PlatformDep) -> list[Snapshot]:
    return platform.datasets.list_snapshots(access.project, name)


@router.get("/dataset-snapshots/{snapshot_id}")
def get_snapshot(snapshot_id: str, access: Viewer, platform: PlatformDep) -> Snapshot:
    return platform.datasets.get_snapshot(access.project, snapshot_id)


@router.post("/dataset-snapshots/{snapshot_id}/retry")
def retry_snapshot(snapshot_id: str, access: Editor, platform: PlatformDep) -> Snapshot:
    return platform.datasets.retry_snapshot(access.project, snapshot_id)
