"""Persistence of jobs and quotas: the queue lives in the database, so a restart loses nothing."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import NotFound
from modelyard.core.ids import utcnow
from modelyard.training.models import CodeRef, Job, JobState, Quota, Resources
from modelyard.training.scheduler import Demand
from modelyard.training.tables import CodeRow, JobRow, QuotaRow


class JobStore(abc.ABC):
    """Jobs and quotas. Returned objects are copies; `update` is compare-and-set on state."""

    @abc.abstractmethod
    def add(self, job: Job, handle: str | None = None) -> Job: ...

    @abc.abstractmethod
    def get(self, project: str | None, job_id: str) -> Job:
        """Raises NotFound when the job does not exist (in `project`, when given)."""

    @abc.abstractmethod
    def handle(self, job_id: str) -> str | None: ...

    @abc.abstractmethod
    def token_ref(self, job_id: str) -> tuple[str, str] | None:
        """(user id, token id) of the running attempt's API token, if one was minted."""

    @abc.abstractmethod
    def list_jobs(self, project: str, states: list[JobState] | None, limit: int,
                  after: str | None) -> list[Job]:
        """Newest first; `after` is the id of the last job of the previous page."""

    @abc.abstractmethod
    def in_states(self, states: list[JobState]) -> list[Job]: ...

    @abc.abstractmethod
    def queued_demands(self) -> list[Demand]:
        """What every queued job asks for: only what admission needs, read in one query."""

    @abc.abstractmethod
    def update(self, job_id: str, expect: list[JobState] | None, **values: Any) -> Job | None:
        """Sets `values` when the job is in one of `expect` (any state when None); else None."""

    @abc.abstractmethod
    def add_code(self, project: str, digest: str, size: int, user: str) -> None:
        """Records that `project` holds the code package `digest` (idempotent)."""

    @abc.abstractmethod
    def has_code(self, project: str, digest: str) -> bool: ...

    @abc.abstractmethod
    def set_quota(self, project: str, quota: Quota) -> Quota: ...

    @abc.abstractmethod
    def quotas(self) -> dict[str, Quota]: ...


_COLUMNS = {c.key for c in JobRow.__table__.columns}


class SqlJobStore(JobStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, job: Job, handle: str | None = None) -> Job:
        with self.db.session() as s:
            s.add(JobRow(
                id=job.id, project=job.project, name=job.name, state=job.state.value,
                trainer=job.trainer, code_digest=job.code.digest if job.code else None,
                code_entrypoint=job.code.entrypoint if job.code else None,
                code_hash=job.code_hash, dataset_snapshot=job.dataset_snapshot,
                hyperparameters=job.hyperparameters, cpu=job.resources.cpu,
                gpu=job.resources.gpu, memory_mb=job.resources.memory_mb,
                workers=job.resources.workers, processes=job.resources.processes,
                disk_mb=job.resources.disk_mb,
                priority=job.priority, timeout_s=job.timeout_s, max_retries=job.max_retries,
                attempt=job.attempt, created_by=job.created_by, created_at=job.created_at,
                queued_at=job.queued_at, scheduled_at=None, started_at=None, finished_at=None,
                run_id=job.run_id, experiment=job.experiment, exit_code=None,
                message=job.message, checkpoint=None, model_version=None, progress={},
                gpus=[], handle=handle,
            ))
        return job

    def get(self, project: str | None, job_id: str) -> Job:
        with self.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"job {job_id!r} does not exist in project {project!r}",
                               {"job": job_id})
            return _job(row)

    def handle(self, job_id: str) -> str | None:
        with self.db.session() as s:
            return s.scalar(sa.select(JobRow.handle).where(JobRow.id == job_id))

    def token_ref(self, job_id: str) -> tuple[str, str] | None:
        with self.db.session() as s:
            row = s.execute(sa.select(JobRow.token_user_id, JobRow.token_id)
                            .where(JobRow.id == job_id)).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return str(row[0]), str(row[1])

    def list_jobs(self, project: str, states: list[JobState] | None, limit: int,
                  after: str | None) -> list[Job]:
        q = sa.select(JobRow).where(JobRow.project == project)
        if states:
            q = q.where(JobRow.state.in_([st.value for st in states]))
        if after:
            q = q.where(JobRow.id < after)
        q = q.order_by(JobRow.id.desc()).limit(limit)
        with self.db.session() as s:
            return [_job(r) for r in s.scalars(q)]

    def in_states(self, states: list[JobState]) -> list[Job]:
        q = sa.select(JobRow).where(JobRow.state.in_([st.value for st in states]))
        with self.db.session() as s:
            return [_job(r) for r in s.scalars(q.order_by(JobRow.queued_at, JobRow.id))]

    def queued_demands(self) -> list[Demand]:
        q = sa.select(JobRow.id, JobRow.project, JobRow.cpu * JobRow.workers,
                      JobRow.gpu * JobRow.workers, JobRow.memory_mb * JobRow.workers,
                      JobRow.priority, JobRow.queued_at
                      ).where(JobRow.state == JobState.queued.value)
        with self.db.session() as s:
            return [Demand(r[0], r[1], r[2], r[3], r[4], r[5], r[6].timestamp())
                    for r in s.execute(q)]

    def update(self, job_id: str, expect: list[JobState] | None, **values: Any) -> Job | None:
        unknown = set(values) - _COLUMNS
        if unknown:
            raise ValueError(f"unknown job columns {sorted(unknown)}")
        values = {k: (v.value if isinstance(v, JobState) else v) for k, v in values.items()}
        with self.db.session() as s:
            q = sa.update(JobRow).where(JobRow.id == job_id)
            if expect is not None:
                q = q.where(JobRow.state.in_([st.value for st in expect]))
            if s.execute(q.values(**values)).rowcount == 0:  # type: ignore[attr-defined]
                return None
            row = s.get(JobRow, job_id)
            assert row is not None
            s.refresh(row)
            return _job(row)

    def add_code(self, project: str, digest: str, size: int, user: str) -> None:
        with self.db.session() as s:
            if s.get(CodeRow, (project, digest)) is None:
                s.add(CodeRow(project=project, digest=digest, size=size, created_at=utcnow(),
                              created_by=user))

    def has_code(self, project: str, digest: str) -> bool:
        with self.db.session() as s:
            return s.get(CodeRow, (project, digest)) is not None

    def set_quota(self, project: str, quota: Quota) -> Quota:
        with self.db.session() as s:
            row = s.get(QuotaRow, project) or QuotaRow(project=project)
            row.max_cpu, row.max_gpu, row.max_jobs = quota.max_cpu, quota.max_gpu, quota.max_jobs
            s.add(row)
        return quota

    def quotas(self) -> dict[str, Quota]:
        with self.db.session() as s:
            return {r.project: Quota(max_cpu=r.max_cpu, max_gpu=r.max_gpu, max_jobs=r.max_jobs)
                    for r in s.scalars(sa.select(QuotaRow))}


def demand_of(r: Resources, job_id: str, project: str, priority: int,
              queued_at: datetime) -> Demand:
    return Demand(job_id, project, r.total_cpu, r.total_gpu, r.total_memory_mb, priority,
                  queued_at.timestamp())


def _job(row: JobRow) -> Job:
    code = (CodeRef(digest=row.code_digest, entrypoint=row.code_entrypoint or "train.py")
            if row.code_digest else None)
    return Job(
        id=row.id, project=row.project, name=row.name, state=JobState(row.state),
        trainer=row.trainer, code=code, code_hash=row.code_hash,
        dataset_snapshot=row.dataset_snapshot, hyperparameters=dict(row.hyperparameters or {}),
        resources=_resources(row), priority=row.priority, timeout_s=row.timeout_s,
        max_retries=row.max_retries, attempt=row.attempt, created_by=row.created_by,
        created_at=row.created_at, queued_at=row.queued_at, scheduled_at=row.scheduled_at, started_at=row.started_at,
        finished_at=row.finished_at, run_id=row.run_id, experiment=row.experiment,
        exit_code=row.exit_code, message=row.message, checkpoint=row.checkpoint,
        model_version=row.model_version, progress=dict(row.progress or {}),
        gpus=list(row.gpus or []),
    )


def _resources(row: JobRow) -> Resources:
    extra = {k: v for k, v in (("processes", row.processes), ("disk_mb", row.disk_mb))
             if v is not None}  # rows from before these limits take the defaults
    return Resources(cpu=row.cpu, gpu=row.gpu, memory_mb=row.memory_mb, workers=row.workers,
                     **extra)
