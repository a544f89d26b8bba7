"""The scheduler loop: watch running jobs, admit queued ones, launch them.

One thread per server. Every step is written to the database before it acts, so a restarted
server picks up where this one stopped: jobs still running are adopted (their handle is
persisted), jobs lost without an exit code are retried from their last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.auth import Principal
from modelyard.core.errors import ModelyardError
from modelyard.core.ids import utcnow
from modelyard.training._credentials import issue_ticket, void_tickets
from modelyard.training.executors import Launch
from modelyard.training.models import ACTIVE_STATES, Job, JobState
from modelyard.training.scheduler import Capacity, Decision, Demand, Limit, admit
from modelyard.training.store import demand_of
from modelyard.training.trainers import BUILTINS

if TYPE_CHECKING:
    from modelyard.core.settings import Settings
    from modelyard.training.service import TrainingService

log = logging.getLogger("modelyard.training")
ADMIT_EVERY_S = 5.0
RUN_STATUS = {JobState.succeeded: "finished", JobState.failed: "failed",
              JobState.cancelled: "killed"}


def job_capacity(settings: Settings) -> Capacity:
    t = settings.training
    cpus = t.capacity_cpus if t.capacity_cpus is not None else float(os.cpu_count() or 1)
    gpus = t.capacity_gpus if t.capacity_gpus is not None else _gpu_count()
    mem = t.capacity_memory_mb
    if mem is None:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return Capacity(cpu=cpus, gpu=gpus, memory_mb=int(mem))


def _gpu_count() -> int:
    # Without an NVIDIA driver there is nothing to count: skip importing torch (seconds).
    if not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()):
        return 0
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no usable torch means no GPUs
        return 0


def demand(job: Job) -> Demand:
    return demand_of(job.resources, job.id, job.project, job.priority, job.queued_at)


class SchedulerLoop:
    def __init__(self, svc: TrainingService) -> None:
        self.svc = svc
        self.store = svc.store
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._changed = threading.Event()
        self._changed.set()
        self._last_admit = 0.0

    def start(self) -> None:
        self.reconcile()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="training-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        """Something changed that may let a job start: decide again, now."""
        self._changed.set()
        self._wake.set()

    def _run(self) -> None:
        interval = self.svc.settings.training.poll_interval_s
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("training scheduler round failed")
            self._wake.wait(interval)
            self._wake.clear()

    def reconcile(self) -> None:
        """After a restart: a job admitted whose launch was never recorded is adopted when its
        process runs (so it never runs twice at once), else it goes back to the queue."""
        for job in self.store.in_states([JobState.scheduled]):
            if self.store.handle(job.id):
                continue
            handle = self.svc.executor.find(Launch(job_id=job.id, workers=job.resources.workers,
                                                   env={}, log_path=self.svc.log_path(job.id)))
            if handle and self.svc.executor.poll(handle).running:
                self.store.update(job.id, [JobState.scheduled], state=JobState.running,
                                  started_at=utcnow(), handle=handle)
                continue
            self.store.update(job.id, [JobState.scheduled], state=JobState.queued,
                              scheduled_at=None, gpus=[])

    def tick(self) -> None:
        with self._tick_lock:
            active = self.store.in_states(list(ACTIVE_STATES))
            still = [j for j in active if not self._watch(j)]
            if len(still) < len(active):
                self._changed.set()
            # Admission only when something changed (a submit, a cancel, a job ending, a
            # quota), or now and then for the starvation clock: a big queue costs nothing idle.
            due = time.monotonic() - self._last_admit > ADMIT_EVERY_S
            if not (self._changed.is_set() or due):
                return
            self._changed.clear()
            self._last_admit = time.monotonic()
            queued = self.store.queued_demands()
            if not queued:
                return
            decision = self.decide(queued, [demand(j) for j in still])
            used_gpus = {g for j in still for g in j.gpus}
            for job_id in decision.admitted:
                self._launch(self.store.get(None, job_id), used_gpus)

    def decide(self, queued: list[Demand], running: list[Demand]) -> Decision:
        """Admission as of now: which jobs start, the queue's order, why the others wait.
        The loop acts on it; the API shows the same decision on queued jobs."""
        quotas = {p: Limit(q.max_cpu, q.max_gpu, q.max_jobs)
                  for p, q in self.store.quotas().items()}
        return admit(queued, running, self.svc.capacity, quotas, now=utcnow().timestamp(),
                     reserve_after_s=self.svc.settings.training.backfill_window_s)

    def standing(self) -> Decision:
        """The decision over every queued job and every job holding resources now."""
        running = [demand(j) for j in self.store.in_states(list(ACTIVE_STATES))]
        return self.decide(self.store.queued_demands(), running)

    # watching ----------------------------------------------------------------------------
    def _watch(self, job: Job) -> bool:
        """Polls one active job; True when it has ended (and its resources are free)."""
        handle = self.store.handle(job.id)
        if handle is None:
            return False  # being launched right now
        status = self.svc.executor.poll(handle)
        now = utcnow()
        if status.running:
            if job.started_at and now - job.started_at > timedelta(seconds=job.timeout_s):
                self.svc.executor.cancel(handle)
                done = self.store.update(
                    job.id, list(ACTIVE_STATES), state=JobState.failed, finished_at=now,
                    message=f"timed out: the job ran past its wall time ({job.timeout_s} s)")
                if done:
                    self.ended(done)
                return True
            return False
        code = status.exit_code
        # Out of time is final (as when this loop stops it); other limits may pass on a retry
        # that resumes from a checkpoint.
        out_of_time = status.limit == "wall_s"
        if code == 0:
            done = self.store.update(job.id, list(ACTIVE_STATES), state=JobState.succeeded,
                                     finished_at=now, exit_code=0, handle=None,
                                     message="succeeded")
        elif job.attempt < max(job.max_retries, 1 if code is None else 0) and not out_of_time:
            why = status.reason or (
                "lost (no exit code)" if code is None else f"exited with code {code}")
            done = self.store.update(
                job.id, list(ACTIVE_STATES), state=JobState.queued, attempt=job.attempt + 1,
                exit_code=code, handle=None, gpus=[], scheduled_at=None,
                message=f"attempt {job.attempt} {why}; retrying from its last checkpoint")
            self.revoke_token(job)
            return True
        else:
            why = status.reason or (
                "was lost (no exit code)" if code is None else f"exited with code {code}")
            done = self.store.update(job.id, list(ACTIVE_STATES), state=JobState.failed,
                                     finished_at=now, exit_code=code, handle=None,
                                     message=f"the job {why}; see its logs")
        if done:
            self.ended(done)
        return True

    def ended(self, job: Job) -> None:
        """After a job reached its final state: announce `job.ended` (the state is already
        stored, so listeners need not wait for the rest), revoke its token, close its run."""
        self.svc.events.publish("job.ended", {"project": job.project, "job": job.id,
                                              "state": job.state.value})
        self.revoke_token(job)
        if job.run_id:
            try:
                self.svc.registry.finish_run(job.project, job.run_id, RUN_STATUS[job.state])
            except ModelyardError:
                log.warning("could not finish run %s of job %s", job.run_id, job.id,
                            exc_info=True)

    def revoke_token(self, job: Job) -> None:
        """Voids the attempt's launch ticket and revokes every token it was exchanged for."""
        try:
            void_tickets(self.svc.auth, job.id)
        except ModelyardError:
            log.warning("could not void the launch ticket of job %s", job.id, exc_info=True)
        # A token minted at launch (by a server before launch tickets) is revoked by its id.
        ref = self.store.token_ref(job.id)
        if ref is None:
            return
        try:
            self.svc.auth.revoke_token(Principal(user_id=ref[0], user_name=job.created_by),
                                       ref[1])
        except ModelyardError:
            log.warning("could not revoke the token of job %s", job.id, exc_info=True)

    # launching ---------------------------------------------------------------------------
    def _launch(self, job: Job, used_gpus: set[int]) -> None:
        r = job.resources
        free = [g for g in range(self.svc.capacity.gpu) if g not in used_gpus]
        gpus = free[: r.total_gpu]
        used_gpus.update(gpus)
        now = utcnow()
        if self.store.update(job.id, [JobState.queued], state=JobState.scheduled,
                             scheduled_at=now, gpus=gpus) is None:
            return  # cancelled meanwhile
        try:
            run_id = job.run_id or self._create_run(job)
            env = self._env(job, run_id)
            path = self.svc.log_path(job.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(f"--- modelyard: attempt {job.attempt} of job {job.id} starts at "
                        f"{now.isoformat()}Z on {r.workers} worker(s) ---\n")
            handle = self.svc.executor.submit(Launch(
                job_id=job.id, workers=r.workers, env=env, log_path=path, gpus=gpus,
                cpu=r.cpu, memory_mb=r.memory_mb, processes=r.processes, disk_mb=r.disk_mb,
                timeout_s=job.timeout_s, ro_binds=self._snapshot_binds(job)))
        except Exception as e:
            log.exception("launching job %s failed", job.id)
            done = self.store.update(job.id, [JobState.scheduled], state=JobState.failed,
                                     finished_at=utcnow(), message=f"could not start: {e}")
            if done:
                self.ended(done)
            return
        started = self.store.update(job.id, [JobState.scheduled], state=JobState.running,
                                    started_at=utcnow(), handle=handle, run_id=run_id)
        if started is None:  # cancelled while it was starting
            self.svc.executor.cancel(handle)
            self.revoke_token(job)

    def _snapshot_binds(self, job: Job) -> dict[str, str]:
        """The job's dataset snapshot files, read-only at their own paths (the job opens the
        URIs the API gives it): the Lance dataset and the split file, nothing else of the blob
        root. Nothing on an object store (those are reached over the network)."""
        if not job.dataset_snapshot:
            return {}
        snap = self.svc.datasets.get_snapshot(job.project, job.dataset_snapshot)
        paths = [snap.uri, snap.splits_uri or ""]
        return {p: p for p in paths if p and "://" not in p and Path(p).exists()}

    def _create_run(self, job: Job) -> str | None:
        try:
            run = self.svc.registry.create_run(
                job.project, experiment=job.experiment, params=job.hyperparameters,
                tags={"job_id": job.id, "trainer": job.trainer or "code"}, job_id=job.id,
                code_hash=job.code_hash, dataset_snapshot=job.dataset_snapshot,
                user=job.created_by)
        except ModelyardError:
            log.warning("no registry run for job %s", job.id, exc_info=True)
            return None
        run_id = run.get("id") if isinstance(run, dict) else getattr(run, "id", None)
        if run_id:
            self.store.update(job.id, None, run_id=str(run_id))
        return str(run_id) if run_id else None

    def _env(self, job: Job, run_id: str | None) -> dict[str, str]:
        # No secret in here: executors show the environment to others (Ray's dashboard). The
        # job exchanges the one-time ticket for its token and the blob store's options.
        env = {
            "MODELYARD_URL": self.svc.settings.resolved_public_url,
            "MODELYARD_TICKET": issue_ticket(self.svc.auth, job),
            "MODELYARD_PROJECT": job.project,
            "MODELYARD_JOB_ID": job.id,
            "MODELYARD_RUN_ID": run_id or "",
            "MODELYARD_ATTEMPT": str(job.attempt),
            "MODELYARD_DATASET_SNAPSHOT": job.dataset_snapshot or "",
            "MODELYARD_HYPERPARAMETERS": json.dumps(job.hyperparameters),
            "MODELYARD_CODE_HASH": job.code_hash,
            "MODELYARD_TRAINER": job.trainer or "",
        }
        if job.trainer:
            env["MODELYARD_ENTRYPOINT"] = f"{BUILTINS[job.trainer].module}:main"
        elif job.code:
            env["MODELYARD_CODE_DIGEST"] = job.code.digest
            env["MODELYARD_PACKAGE_LIMITS"] = self.svc.settings.security.package_limits().encode()
            env["MODELYARD_ENTRYPOINT"] = job.code.entrypoint
        return env


