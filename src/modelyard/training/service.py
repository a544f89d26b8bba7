"""Use cases of the training component: submit, inspect, cancel jobs; what jobs report back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from modelyard.core import codepkg
from modelyard.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    ModelyardError,
    NotFound,
    PayloadTooLarge,
)
from modelyard.core.events import EventBus
from modelyard.core.ids import check_name, new_id, utcnow
from modelyard.sandbox import Sandbox
from modelyard.training import _credentials
from modelyard.training.executors import open_executor
from modelyard.training.loop import SchedulerLoop, job_capacity
from modelyard.training.models import (
    CodeRef,
    CodeUpload,
    Job,
    JobCredentials,
    JobPage,
    JobSpec,
    JobState,
    MetricPoint,
    ModelMeta,
    Quota,
    TrainerInfo,
)
from modelyard.training.scheduler import Capacity
from modelyard.training.store import SqlJobStore
from modelyard.training.trainers import BUILTINS, get_builtin, validate_params

if TYPE_CHECKING:
    from modelyard.core.blobs import ContentStore
    from modelyard.core.db import Database
    from modelyard.core.settings import Settings
    from modelyard.datasets.service import DatasetService
    from modelyard.registry.service import RegistryService
    from modelyard.server.service import AuthService

log = logging.getLogger("modelyard.training")
MAX_CODE_BYTES = 256 * 1024 * 1024
MAX_CHECKPOINT_BYTES = 4 * 1024 * 1024 * 1024


class TrainingService:
    def __init__(self, db: Database, settings: Settings, auth: AuthService, cas: ContentStore,
                 datasets: DatasetService, registry: RegistryService) -> None:
        self.db = db
        self.settings = settings
        self.auth = auth
        self.cas = cas
        self.datasets = datasets
        self.registry = registry
        self.store = SqlJobStore(db)
        self.capacity: Capacity = job_capacity(settings)
        # Where jobs run on this machine; unconfined runs need a single-user platform (auto).
        self.sandbox = Sandbox(settings, count_users=auth.count_users)
        self.executor = open_executor(settings, self.sandbox)
        self.loop = SchedulerLoop(self)
        self.executor.on_exit = self.loop.wake  # a job's exit is seen at once, not next poll
        self.events = EventBus()  # the platform shares one bus between components
        self._files: dict[str, tuple[str, ...]] = {}  # code package digest -> its files

    # background loop -------------------------------------------------------------------
    def start(self) -> None:
        if self.executor.runs_user_code_here:
            self.sandbox.warn_if_unconfined()
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()

    def tick(self) -> None:
        """One scheduling round (the loop calls it; tests may too)."""
        self.loop.tick()

    def log_path(self, job_id: str) -> Path:
        return self.settings.home / "training" / "logs" / f"{job_id}.log"

    # catalogue -------------------------------------------------------------------------
    def trainers(self) -> list[TrainerInfo]:
        return [b.info() for b in BUILTINS.values()]

    def upload_code(self, project: str, user: str, data: BinaryIO) -> CodeUpload:
        """Validates the archive and stores its canonical form: the digest is the code's
        identity (its files' paths and contents), so re-zipping the same source is a no-op.
        Nothing is stored when the archive is refused."""
        raw = data.read(MAX_CODE_BYTES + 1)
        if len(raw) > MAX_CODE_BYTES:
            raise PayloadTooLarge(f"a code package archive may be at most {MAX_CODE_BYTES} "
                                  "bytes; leave out data and weights",
                                  {"limit": MAX_CODE_BYTES})
        package = codepkg.normalize(raw, limits=self.settings.security.package_limits())
        stored = self.cas.put(package.data)
        self._files[package.digest] = package.files
        self.store.add_code(project, stored.digest, stored.size, user)
        return CodeUpload(digest=stored.digest, size=stored.size)

    def check_code(self, project: str, code: CodeRef) -> None:
        """Raises InvalidArgument unless `project` holds the package and it holds the
        entrypoint: a job that could not start is refused before it is queued."""
        if not self.store.has_code(project, code.digest):
            raise InvalidArgument(f"no code package {code.digest}: upload it with "
                                  "POST .../training/code first", {"field": "code.digest"})
        files = self._files.get(code.digest)
        if files is None:
            # Packages are immutable: their file lists are read once per process.
            files = codepkg.list_files(self.cas.get(code.digest),
                                       limits=self.settings.security.package_limits())
            self._files[code.digest] = files
        codepkg.check_entrypoint(files, code.entrypoint)

    def download_code(self, project: str, digest: str) -> bytes:
        """A code package of `project` (packages of other projects stay invisible)."""
        if not self.store.has_code(project, digest):
            raise NotFound(f"project {project!r} has no code package {digest[:80]!r}; upload it "
                           "first", {"digest": digest[:80]})
        return self.cas.get(digest)

    # jobs ------------------------------------------------------------------------------
    def submit(self, project: str, user: str, spec: JobSpec) -> Job:
        """Validates everything first; a spec that cannot run is refused and nothing is queued."""
        if self.executor.runs_user_code_here:
            self.sandbox.check_allowed()  # 409 now, rather than a job that fails at launch
        params, code_hash = self._check_trainer(project, spec)
        self._check_resources(spec)
        self._check_snapshot(project, spec)
        now = utcnow()
        job_id = new_id("job")
        experiment = check_name(spec.experiment, "experiment") if spec.experiment else (
            spec.trainer or "code")
        job = Job(
            id=job_id, project=project, name=spec.name or f"{spec.trainer or 'code'}-{job_id[-6:]}",
            state=JobState.queued, trainer=spec.trainer, code=spec.code, code_hash=code_hash,
            dataset_snapshot=spec.dataset_snapshot, hyperparameters=params,
            resources=spec.resources, priority=spec.priority, timeout_s=spec.timeout_s,
            max_retries=spec.max_retries, attempt=0, created_by=user, created_at=now,
            queued_at=now, scheduled_at=None, started_at=None, finished_at=None, run_id=None,
            experiment=experiment, exit_code=None, message="", checkpoint=None,
            model_version=None, progress={}, gpus=[],
        )
        self.store.add(job)
        self._lineage(job)  # what it reads is known now, whether or not it ever makes a model
        self.loop.wake()
        return self.get(project, job_id)

    def get(self, project: str, job_id: str) -> Job:
        return self._with_standing([self.store.get(project, job_id)])[0]

    def list_jobs(self, project: str, states: list[JobState] | None, limit: int,
             page_token: str | None) -> JobPage:
        items = self.store.list_jobs(project, states, limit + 1, page_token)
        more = len(items) > limit
        items = self._with_standing(items[:limit])
        return JobPage(items=items, next_page_token=items[-1].id if more and items else None)

    def _with_standing(self, jobs: list[Job]) -> list[Job]:
        """Queued jobs with their place and why they wait: the scheduler's own decision, made
        now on what the database holds (the loop makes the same on its next round)."""
        if not any(j.state is JobState.queued for j in jobs):
            return jobs
        decision = self.loop.standing()
        return [j.model_copy(update={"queue_position": decision.position(j.id),
                                     "queue_reason": decision.waiting.get(j.id)})
                if j.state is JobState.queued else j for j in jobs]

    def cancel(self, project: str, job_id: str, reason: str = "cancelled by a user") -> Job:
        job = self.store.get(project, job_id)
        if job.state.terminal:
            raise FailedPrecondition(f"job {job_id} already ended ({job.state.value}); "
                                     "nothing to cancel", {"state": job.state.value})
        done = self.store.update(job_id, [JobState.queued, JobState.scheduled, JobState.running],
                                 state=JobState.cancelled, finished_at=utcnow(), message=reason)
        if done is None:
            return self.get(project, job_id)
        handle = self.store.handle(job_id)
        if handle:
            self.executor.cancel(handle)
        self.loop.ended(done)
        self.loop.wake()
        return self.get(project, job_id)

    def redeem_credentials(self, project: str, job_id: str, ticket: str | None) -> JobCredentials:
        """A job process's token and blob store options, for one use of its launch ticket."""
        return _credentials.redeem(self.auth, self.store, self.cas.blobs, project, job_id, ticket)

    def read_logs(self, project: str, job_id: str, offset: int,
                  max_bytes: int = 1024 * 1024) -> tuple[bytes, int]:
        self.store.get(project, job_id)
        if offset < 0:
            raise InvalidArgument("offset must be >= 0", {"field": "offset"})
        path = self.log_path(job_id)
        if not path.exists():
            return b"", offset
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(max_bytes)
        return data, offset + len(data)

    def follow_logs(self, project: str, job_id: str, offset: int,
                    poll_s: float = 0.2) -> Iterator[bytes]:
        """Log bytes from `offset` as they are written, until the job has ended."""
        import time

        while True:
            data, offset = self.read_logs(project, job_id, offset)
            if data:
                yield data
                continue
            if self.store.get(project, job_id).state.terminal:
                data, offset = self.read_logs(project, job_id, offset)
                if data:
                    yield data
                return
            time.sleep(poll_s)

    def set_quota(self, project: str, quota: Quota) -> Quota:
        saved = self.store.set_quota(project, quota)
        self.loop.wake()
        return saved

    def get_quota(self, project: str) -> Quota:
        return self.store.quotas().get(project, Quota())

    # what jobs report back ---------------------------------------------------------------
    def record_metrics(self, project: str, job_id: str, points: list[MetricPoint]) -> None:
        job = self.store.get(project, job_id)
        if not points:
            return
        now = utcnow().timestamp()
        if job.run_id:
            self.registry.log_metrics(project, job.run_id,
                                      [(p.key, p.step, p.value, p.time or now) for p in points])
        last = max(points, key=lambda p: p.step)
        progress = dict(job.progress)
        progress.update({p.key: p.value for p in points if p.step == last.step})
        progress["step"] = last.step
        self.store.update(job_id, None, progress=progress)

    def put_checkpoint(self, project: str, job_id: str, data: BinaryIO) -> str:
        job = self.store.get(project, job_id)
        if job.state.terminal:
            raise FailedPrecondition(f"job {job_id} has ended; it cannot save checkpoints")
        digest = self.cas.put(data, max_bytes=MAX_CHECKPOINT_BYTES).digest
        self.store.update(job_id, None, checkpoint=digest)
        return digest

    def get_checkpoint(self, project: str, job_id: str) -> bytes:
        job = self.store.get(project, job_id)
        if not job.checkpoint:
            raise NotFound(f"job {job_id} has saved no checkpoint yet", {"job": job_id})
        return self.cas.get(job.checkpoint)

    def register_model(self, project: str, job_id: str, meta: ModelMeta,
                       files: dict[str, BinaryIO]) -> dict[str, Any]:
        """Stores the artifacts and registers a model version with the job's lineage."""
        job = self.store.get(project, job_id)
        check_name(meta.name, "model")
        if "model.onnx" not in files:
            raise InvalidArgument("a model needs its model.onnx file", {"field": "files"})
        artifacts = {name: self.registry.put_artifact(project, f, name=name,
                                                      user=job.created_by).digest
                     for name, f in files.items()}
        version = self.registry.register_version(
            project, meta.name, artifacts=artifacts, framework=meta.framework,
            signature=meta.signature, preprocessing=meta.preprocessing, metrics=meta.metrics,
            run_id=job.run_id, job_id=job.id, dataset_snapshot_id=job.dataset_snapshot,
            code_hash=job.code_hash, params=job.hyperparameters, user=job.created_by,
        )
        info = _dump(version)
        self._lineage(job)
        self.store.update(job_id, None, model_version=info)
        return info

    # checks ----------------------------------------------------------------------------
    def _check_trainer(self, project: str, spec: JobSpec) -> tuple[dict[str, Any], str]:
        if (spec.trainer is None) == (spec.code is None):
            raise InvalidArgument("give exactly one of `trainer` (a built-in name) or `code` "
                                  "(an uploaded package)", {"field": "trainer"})
        hyperparameters = dict(spec.hyperparameters)
        if spec.model_name is not None:
            given = hyperparameters.setdefault("model_name", spec.model_name)
            if given != spec.model_name:
                raise InvalidArgument(
                    f"model_name {spec.model_name!r} and hyperparameter model_name {given!r} "
                    "differ: give one", {"field": "model_name"})
            check_name(spec.model_name, "model_name")
        if spec.code is not None:
            self.check_code(project, spec.code)
            return hyperparameters, spec.code.digest
        builtin = get_builtin(spec.trainer or "")
        if spec.dataset_snapshot is None:
            raise InvalidArgument(f"trainer {builtin.name!r} needs a dataset_snapshot "
                                  f"(a {builtin.task} snapshot id)",
                                  {"field": "dataset_snapshot"})
        return validate_params(builtin, hyperparameters), builtin.code_hash()

    def _check_resources(self, spec: JobSpec) -> None:
        r, cap = spec.resources, self.capacity
        for what, need, have in (("cpu", r.total_cpu, cap.cpu), ("gpu", r.total_gpu, cap.gpu),
                                 ("memory_mb", r.total_memory_mb, cap.memory_mb)):
            if need > have + 1e-9:
                raise InvalidArgument(
                    f"the job asks for {need:g} {what} in all ({r.workers} worker(s)) but the "
                    f"cluster has {have:g}: ask for less", {"field": f"resources.{what}",
                                                           "requested": need, "capacity": have})

    def _check_snapshot(self, project: str, spec: JobSpec) -> None:
        if spec.dataset_snapshot is None:
            return
        snap = _dump(self.datasets.get_snapshot(project, spec.dataset_snapshot))
        status = str(snap.get("status", "ready"))
        if status != "ready":
            raise FailedPrecondition(
                f"dataset snapshot {spec.dataset_snapshot} is {status}, not ready: wait for it "
                "to be ready (or make a new one if it failed)",
                {"field": "dataset_snapshot", "status": status})
        if spec.trainer is not None:
            task = BUILTINS[spec.trainer].task
            if snap.get("type") not in (None, task):
                raise InvalidArgument(
                    f"trainer {spec.trainer!r} trains on {task} data, but snapshot "
                    f"{spec.dataset_snapshot} is {snap.get('type')}",
                    {"field": "dataset_snapshot"})

    def _lineage(self, job: Job) -> None:
        # The registry links run, job, snapshot and code to the version; the job's own
        # inputs are ours to record.
        try:
            self.registry.add_edge(job.project, "code", job.code_hash, "job", job.id, "ran")
            if job.dataset_snapshot:
                self.datasets.record_use(job.project, job.dataset_snapshot, "job", job.id,
                                         "read_by")
        except ModelyardError:
            log.warning("lineage of job %s not recorded", job.id, exc_info=True)


def _dump(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")  # type: ignore[no-any-return]
    if isinstance(obj, dict):
        return obj
    return dict(vars(obj))
