"""HTTP routes of the workflow manager (thin: every rule lives in the service)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from modelyard.core.errors import InvalidArgument
from modelyard.server.deps import Editor, PlatformDep, Viewer
from modelyard.workflows.models import (
    Pipeline,
    PipelineRegister,
    PipelineVersion,
    Run,
    RunCreate,
    Trigger,
    TriggerCreate,
    TriggerUpdate,
)

router = APIRouter(prefix="/api/v1/projects/{project}/pipelines", tags=["workflows"])
RESERVED = ("runs", "schedules", "packages")


@router.post("", status_code=status.HTTP_201_CREATED)
def register_pipeline(body: PipelineRegister, access: Editor, platform: PlatformDep) -> Pipeline:
    """Register a built-in pipeline by name; upload your own as a package (below)."""
    if body.name in RESERVED:
        raise InvalidArgument(f"{body.name!r} is reserved; choose another pipeline name")
    return platform.workflows.register(access.project, body.source, access.user, body.name)


@router.post("/packages", status_code=status.HTTP_201_CREATED)
async def register_package(
        request: Request, access: Editor, platform: PlatformDep,
        entry: str = Query(..., max_length=300,
                           description="`module:attr` naming a Pipeline (or a function "
                                       "returning one) inside the package"),
        name: str | None = Query(None, max_length=100,
                                 description="register under this name (default: its own)"),
) -> Pipeline:
    """Register a pipeline from a code package: the body is a .zip or .tar.gz of its source.

    The package is validated, its pipeline is loaded in the sandbox (never in the server),
    and the definition is stored under a hash that covers the package's content."""
    if name in RESERVED:
        raise InvalidArgument(f"{name!r} is reserved; choose another pipeline name")
    data = await request.body()
    return await run_in_threadpool(platform.workflows.register_package, access.project, data,
                                   entry, access.user, name)


@router.get("")
def list_pipelines(access: Viewer, platform: PlatformDep) -> list[Pipeline]:
    return platform.workflows.list_pipelines(access.project)


# -- runs and schedules across pipelines (declared before `/{name}`) ------------------------
@router.get("/runs")
def list_runs(access: Viewer, platform: PlatformDep, pipeline: str | None = None,
              limit: int = Query(50, ge=1, le=1000)) -> list[Run]:
    return platform.workflows.list_runs(access.project, pipeline, limit)


@router.get("/runs/{run_id}")
def get_run(run_id: str, access: Viewer, platform: PlatformDep,
            wait_s: float = Query(0, ge=0, le=60,
                                  description="long-poll: answer once the run ended or after this")
            ) -> Run:
    if wait_s > 0:
        return platform.workflows.wait(access.project, run_id, wait_s)
    return platform.workflows.get_run(access.project, run_id)


@router.post("/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_run(run_id: str, access: Editor, platform: PlatformDep) -> Run:
    return platform.workflows.cancel(access.project, run_id)


@router.get("/schedules")
def list_all_schedules(access: Viewer, platform: PlatformDep) -> list[Trigger]:
    return platform.workflows.list_schedules(access.project)


@router.get("/schedules/{trigger_id}")
def get_schedule(trigger_id: str, access: Viewer, platform: PlatformDep) -> Trigger:
    return platform.workflows.get_schedule(access.project, trigger_id)


@router.patch("/schedules/{trigger_id}")
def update_schedule(trigger_id: str, body: TriggerUpdate, access: Editor,
                    platform: PlatformDep) -> Trigger:
    return platform.workflows.update_schedule(access.project, trigger_id, body)


@router.delete("/schedules/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(trigger_id: str, access: Editor, platform: PlatformDep) -> None:
    platform.workflows.delete_schedule(access.project, trigger_id)


# -- one pipeline ---------------------------------------------------------------------------
@router.get("/{name}")
def get_pipeline(name: str, access: Viewer, platform: PlatformDep) -> Pipeline:
    return platform.workflows.get_pipeline(access.project, name)


@router.get("/{name}/versions")
def list_versions(name: str, access: Viewer, platform: PlatformDep) -> list[PipelineVersion]:
    """The pipeline's versions, oldest first; `current` marks what a run gets by default."""
    return platform.workflows.versions(access.project, name)


@router.post("/{name}/runs", status_code=status.HTTP_202_ACCEPTED)
def start_run(name: str, body: RunCreate, access: Editor, platform: PlatformDep) -> Run:
    """Start a run of the current version, or of `version`; `no_cache` runs every step."""
    return platform.workflows.run(access.project, name, body.params, access.user,
                                  version=body.version, no_cache=body.no_cache)


@router.get("/{name}/runs")
def list_pipeline_runs(name: str, access: Viewer, platform: PlatformDep,
                       limit: int = Query(50, ge=1, le=1000)) -> list[Run]:
    return platform.workflows.list_runs(access.project, name, limit)


@router.post("/{name}/schedules", status_code=status.HTTP_201_CREATED)
def create_schedule(name: str, body: TriggerCreate, access: Editor,
                    platform: PlatformDep) -> Trigger:
    return platform.workflows.create_schedule(access.project, name, body, access.user)


@router.get("/{name}/schedules")
def list_schedules(name: str, access: Viewer, platform: PlatformDep) -> list[Trigger]:
    return platform.workflows.list_schedules(access.project, name)
