"""HTTP routes of the HPO component."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from modelyard.hpo.models import Study, StudySpec, StudyState, Trial
from modelyard.server.deps import Editor, PlatformDep, Viewer

router = APIRouter(prefix="/api/v1/projects/{project}/hpo", tags=["hpo"])


@router.post("/studies", status_code=status.HTTP_201_CREATED)
def create_study(body: StudySpec, access: Editor, platform: PlatformDep) -> Study:
    return platform.hpo.create(access.project, access.user, body)


@router.get("/studies")
def list_studies(
    access: Viewer, platform: PlatformDep,
    state: Annotated[StudyState | None, Query(description="keep studies in this state")] = None,
) -> list[Study]:
    return platform.hpo.list_studies(access.project, state)


@router.get("/studies/{study}")
def get_study(study: str, access: Viewer, platform: PlatformDep) -> Study:
    """The study (by id or name) with its trial counts and the best trial so far."""
    return platform.hpo.get(access.project, study)


@router.get("/studies/{study}/trials")
def list_trials(study: str, access: Viewer, platform: PlatformDep) -> list[Trial]:
    """Every trial's params and metrics side by side, by trial number."""
    return platform.hpo.trials(access.project, study)


@router.post("/studies/{study}/stop")
def stop_study(study: str, access: Editor, platform: PlatformDep) -> Study:
    return platform.hpo.stop_study(access.project, study, access.user)


@router.get("/trials/{job_id}/should-prune")
def should_prune(job_id: str, access: Viewer, platform: PlatformDep) -> dict[str, bool]:
    """Whether the trial run by `job_id` was pruned and should stop (see hpo.client_hooks)."""
    return {"prune": platform.hpo.is_pruned(access.project, job_id)}
