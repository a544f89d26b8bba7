"""HTTP routes of the training component."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from modelyard.core.errors import InvalidArgument
from modelyard.server.deps import Admin, Editor, LaunchTicket, PlatformDep, Viewer
from modelyard.training.models import (
    CodeUpload,
    Job,
    JobCredentials,
    JobPage,
    JobSpec,
    JobState,
    MetricBatch,
    ModelMeta,
    Quota,
    TrainerInfo,
)

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["training"])


@router.get("/trainers")
def list_trainers(access: Viewer, platform: PlatformDep) -> list[TrainerInfo]:
    return platform.training.trainers()


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
def submit_job(body: JobSpec, access: Editor, platform: PlatformDep) -> Job:
    return platform.training.submit(access.project, access.user, body)


@router.get("/jobs")
def list_jobs(
    access: Viewer, platform: PlatformDep,
    state: Annotated[list[JobState] | None, Query(description="keep jobs in these states")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[str | None, Query(max_length=100)] = None,
) -> JobPage:
    return platform.training.list_jobs(access.project, state, limit, page_token)


@router.get("/jobs/{job_id}")
def get_job(job_id: str, access: Viewer, platform: PlatformDep) -> Job:
    return platform.training.get(access.project, job_id)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, access: Editor, platform: PlatformDep) -> Job:
    return platform.training.cancel(access.project, job_id,
                                    reason=f"cancelled by {access.user}")


@router.get("/jobs/{job_id}/logs", response_model=None)
def job_logs(
    job_id: str, access: Viewer, platform: PlatformDep,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    follow: bool = False,
) -> Response:
    """The job's output from byte `offset`; with `follow=true`, streamed until the job ends.

    Without follow, `X-Next-Offset` says where to continue.
    """
    svc = platform.training
    if follow:
        svc.get(access.project, job_id)
        return StreamingResponse(svc.follow_logs(access.project, job_id, offset),
                                 media_type="text/plain; charset=utf-8")
    data, nxt = svc.read_logs(access.project, job_id, offset)
    return Response(data, media_type="text/plain; charset=utf-8",
                    headers={"X-Next-Offset": str(nxt)})


@router.post("/jobs/{job_id}/credentials")
def redeem_credentials(job_id: str, ticket: LaunchTicket, platform: PlatformDep) -> JobCredentials:
    """For the job's own processes: `Authorization: Bearer <MODELYARD_TICKET>` is exchanged,
    once per worker of the running attempt, for the job's token and the blob store's options.
    Anything else (an API token, a used-up, expired or other job's ticket) is 401."""
    return platform.training.redeem_credentials(ticket.project, job_id, ticket.ticket)


@router.post("/jobs/{job_id}/metrics", status_code=status.HTTP_204_NO_CONTENT)
def job_metrics(job_id: str, body: MetricBatch, access: Editor, platform: PlatformDep) -> None:
    platform.training.record_metrics(access.project, job_id, body.points)


@router.put("/jobs/{job_id}/checkpoint")
async def put_checkpoint(job_id: str, request: Request, access: Editor,
                         platform: PlatformDep) -> dict[str, str]:
    data = await request.body()
    digest = await run_in_threadpool(platform.training.put_checkpoint, access.project, job_id,
                                     io.BytesIO(data))
    return {"digest": digest}


@router.get("/jobs/{job_id}/checkpoint", response_model=None)
def get_checkpoint(job_id: str, access: Viewer, platform: PlatformDep) -> Response:
    return Response(platform.training.get_checkpoint(access.project, job_id),
                    media_type="application/octet-stream")


@router.post("/jobs/{job_id}/model", status_code=status.HTTP_201_CREATED)
def register_model(job_id: str, access: Editor, platform: PlatformDep,
                   meta: Annotated[str, Form(description="ModelMeta as JSON")],
                   files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
    try:
        parsed = ModelMeta.model_validate(json.loads(meta))
    except (ValueError, ValidationError, RecursionError) as e:
        raise InvalidArgument(f"invalid model meta: {str(e)[:500]}", {"field": "meta"}) from None
    named = {f.filename or "file": f.file for f in files}
    return platform.training.register_model(access.project, job_id, parsed, named)


@router.post("/training/code", status_code=status.HTTP_201_CREATED)
async def upload_code(request: Request, access: Editor, platform: PlatformDep) -> CodeUpload:
    data = await request.body()
    return await run_in_threadpool(platform.training.upload_code, access.project, access.user,
                                   io.BytesIO(data))


@router.get("/training/code/{digest}", response_model=None)
def download_code(digest: str, access: Viewer, platform: PlatformDep) -> Response:
    return Response(platform.training.download_code(access.project, digest),
                    media_type="application/octet-stream")


@router.get("/training/quota")
def get_quota(access: Viewer, platform: PlatformDep) -> Quota:
    return platform.training.get_quota(access.project)


@router.put("/training/quota")
def set_quota(body: Quota, access: Admin, platform: PlatformDep) -> Quota:
    return platform.training.set_quota(access.project, body)
