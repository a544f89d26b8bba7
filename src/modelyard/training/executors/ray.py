"""The Ray executor: every job attempt is a Ray job on the cluster at `training.ray_address`.

A single-worker job's Ray job runs `python -m modelyard.runtime.worker` with the job's
MODELYARD_* variables in its runtime_env. A multi-worker job's Ray job runs this module as a
driver (`python -m modelyard.training.executors.ray`), which fits a Ray Train `TorchTrainer`:
every Ray Train worker runs the same trainer entry, with RANK / WORLD_SIZE / LOCAL_RANK from
Ray Train and the torch process group (gloo on CPU, nccl on GPU) already set up by it.

No secret goes to Ray: whoever reaches the cluster's dashboard (or its GCS) reads every job's
entrypoint, runtime_env and metadata. The environment carries a one-time launch ticket instead
(see `training/_credentials.py`), which each worker exchanges with the API for its token and
the blob store's options; `submit` refuses an environment that holds a known secret.

The Ray job's logs (driver and, forwarded by Ray, its workers) are copied into the job's log
file as they grow, so reading a job's logs works as with the local executor. `address` is the
cluster's dashboard (Ray Jobs API), e.g. `http://127.0.0.1:8265`, or `auto` on a cluster node.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from modelyard.core.auth import TOKEN_PREFIX
from modelyard.core.errors import InvalidArgument, Unavailable
from modelyard.core.settings import Settings
from modelyard.training.executors.base import Executor, Launch, Status

log = logging.getLogger(__name__)

WORKER_ENTRY = "python -m modelyard.runtime.worker"
DRIVER_ENTRY = "python -m modelyard.training.executors.ray"
LOG_SYNC_EVERY_S = 1.0
STOP_WAIT_S = 15.0
_RUNNING = {"PENDING", "RUNNING"}
_META_KEY = "modelyard_job_id"
# Variables that hold credentials: never part of a runtime_env (the dashboard shows it).
SECRET_VARS = frozenset({"MODELYARD_TOKEN", "MODELYARD_STORAGE_OPTIONS", "AWS_ACCESS_KEY_ID",
                         "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
# Unavailable when the client cannot be made; then the Ray Jobs client's own: RuntimeError for
# an HTTP error, ConnectionError (an OSError) when the dashboard is unreachable, requests' own.
RAY_ERRORS = (Unavailable, RuntimeError, OSError, ValueError, requests.RequestException)


def dashboard_address(address: str | None) -> str:
    """The Ray Jobs (dashboard) address from `training.ray_address`."""
    if not address:
        raise InvalidArgument("the ray executor needs a cluster: set MODELYARD_TRAINING__RAY_ADDRESS "
                              "to its dashboard address, e.g. http://127.0.0.1:8265")
    if address.startswith("ray://"):
        raise InvalidArgument(f"ray_address {address!r} is a Ray Client address; the ray executor "
                              "submits through the Ray Jobs API: use the cluster's dashboard "
                              "address, e.g. http://<head>:8265")
    if address == "auto" or "://" in address:
        return address
    return f"http://{address}"


class RayExecutor(Executor):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.address = dashboard_address(settings.training.ray_address)
        self._client: Any = None
        self._lock = threading.Lock()
        self._synced: dict[str, float] = {}  # submission id -> when its logs were last copied

    # the cluster -------------------------------------------------------------------------
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                try:
                    self._client = JobSubmissionClient(self.address)
                except Exception as e:  # ConnectionError, or RuntimeError from Ray's probe
                    raise Unavailable(f"cannot reach the Ray cluster at {self.address}: {e}; "
                                      "check training.ray_address and that the cluster's "
                                      "dashboard runs") from e
            return self._client

    # the contract ------------------------------------------------------------------------
    def submit(self, launch: Launch) -> str:
        leaked = sorted(k for k, v in launch.env.items()
                        if k in SECRET_VARS or v.startswith(TOKEN_PREFIX))
        if leaked:  # a programming error upstream; stop before Ray publishes it
            raise InvalidArgument(f"refusing to send secrets to Ray in {leaked}: a job gets "
                                  "its credentials through its launch ticket")
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        launch.log_path.touch()
        sid = f"modelyard-{launch.job_id}-{secrets.token_hex(4)}"
        env = {**launch.env, "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": str(max(1, int(launch.cpu)))}
        gpus_per_worker = len(launch.gpus) // max(1, launch.workers)
        if launch.workers <= 1:
            entrypoint = WORKER_ENTRY
            resources = {"entrypoint_num_cpus": launch.cpu,
                         "entrypoint_num_gpus": gpus_per_worker,
                         "entrypoint_memory": launch.memory_mb * 1024 * 1024}
        else:
            entrypoint = DRIVER_ENTRY
            resources = {}  # the driver only coordinates; the workers ask for resources
            env["MODELYARD_RAY_SCALING"] = json.dumps({
                "workers": launch.workers, "cpu": launch.cpu, "gpu": gpus_per_worker,
                "memory_mb": launch.memory_mb})
        self.client().submit_job(
            entrypoint=entrypoint, submission_id=sid, runtime_env={"env_vars": env},
            metadata={_META_KEY: launch.job_id}, **resources)
        handle = json.dumps({"ray_job": sid, "log": str(launch.log_path),
                             "log_base": launch.log_path.stat().st_size})
        return self.remember(launch, handle)

    def find(self, launch: Launch) -> str | None:
        if saved := super().find(launch):
            return saved
        try:  # submitted, but the server died before it wrote the handle down
            jobs = self.client().list_jobs()
        except RAY_ERRORS:
            return None
        for job in jobs:
            if (job.metadata or {}).get(_META_KEY) == launch.job_id and job.submission_id \
                    and _status_name(job.status) in _RUNNING:
                base = launch.log_path.stat().st_size if launch.log_path.exists() else 0
                return json.dumps({"ray_job": job.submission_id, "log": str(launch.log_path),
                                   "log_base": base})
        return None

    def poll(self, handle: str) -> Status:
        h = json.loads(handle)
        try:
            info = self.client().get_job_info(h["ray_job"])
        except RAY_ERRORS as e:
            if _gone(e):
                return Status(running=False)  # the cluster no longer knows the job
            # An outage is not an ending: the job's own timeout ends a job lost with its cluster.
            log.warning("Ray job %s not polled (%s); counted as running", h["ray_job"], e)
            return Status(running=True)
        status = _status_name(info.status)
        if status in _RUNNING:
            self._sync_logs(h, force=False)
            return Status(running=True)
        self._sync_logs(h, force=True)
        self._synced.pop(h["ray_job"], None)
        if status == "SUCCEEDED":
            return Status(running=False, exit_code=0)
        code = getattr(info, "driver_exit_code", None)
        if status == "FAILED":
            return Status(running=False, exit_code=code if code not in (None, 0) else 1)
        return Status(running=False, exit_code=code)  # STOPPED from outside: lost

    def cancel(self, handle: str) -> None:
        h = json.loads(handle)
        try:
            self.client().stop_job(h["ray_job"])
        except RAY_ERRORS as e:
            log.warning("could not stop Ray job %s: %s", h["ray_job"], e)
            return
        threading.Thread(target=self._final_logs, args=(h,), daemon=True,
                         name=f"ray-stop-{h['ray_job']}").start()

    # logs --------------------------------------------------------------------------------
    def _final_logs(self, h: dict[str, Any]) -> None:
        """After a stop: waits for the Ray job to end, then copies the rest of its logs."""
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            try:
                if _status_name(self.client().get_job_status(h["ray_job"])) not in _RUNNING:
                    break
            except RAY_ERRORS:
                return
            time.sleep(0.5)
        self._sync_logs(h, force=True)

    def _sync_logs(self, h: dict[str, Any], *, force: bool) -> None:
        """Appends what the Ray job logged since the last copy to the job's log file."""
        sid = h["ray_job"]
        now = time.monotonic()
        with self._lock:
            if not force and now - self._synced.get(sid, 0.0) < LOG_SYNC_EVERY_S:
                return
            self._synced[sid] = now
        try:
            text = self.client().get_job_logs(sid)
        except RAY_ERRORS as e:
            log.debug("no logs for Ray job %s: %s", sid, e)
            return
        data = text.encode()
        path = Path(h["log"])
        with self._lock:
            try:
                size = path.stat().st_size
            except OSError:
                return
            written = size - int(h.get("log_base", 0))
            if 0 <= written < len(data):
                with open(path, "ab") as f:
                    f.write(data[written:])


def _status_name(status: Any) -> str:
    return str(getattr(status, "value", status)).upper()


def _gone(e: Exception) -> bool:
    """Whether a Ray Jobs API error says the job does not exist (rather than an outage)."""
    text = str(e)
    return isinstance(e, RuntimeError) and ("404" in text or "does not exist" in text)


# The multi-worker driver (runs inside the Ray job) ------------------------------------------
def train_worker(_config: dict[str, Any]) -> None:
    """One Ray Train worker: the job's trainer with this worker's rank in the environment."""
    from ray import train

    ctx = train.get_context()
    os.environ.update({"RANK": str(ctx.get_world_rank()),
                       "WORLD_SIZE": str(ctx.get_world_size()),
                       "LOCAL_RANK": str(ctx.get_local_rank())})
    from modelyard.runtime.worker import main

    code = main()
    if code:
        raise RuntimeError(f"the trainer exited with code {code} on rank {ctx.get_world_rank()}")


def drive() -> int:
    """Fits a TorchTrainer with the job's scaling; the exit code is the job's."""
    import tempfile

    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    scale = json.loads(os.environ["MODELYARD_RAY_SCALING"])
    per_worker: dict[str, float] = {"CPU": float(scale["cpu"]),
                                    "memory": float(scale["memory_mb"]) * 1024 * 1024}
    if scale["gpu"]:
        per_worker["GPU"] = float(scale["gpu"])
    job_id = os.environ.get("MODELYARD_JOB_ID", "job")
    # Ray Train's run folder holds nothing of ours (checkpoints go to modelyard): a scratch one.
    storage = tempfile.mkdtemp(prefix="modelyard-ray-train-")
    try:
        trainer = TorchTrainer(
            train_worker,
            scaling_config=ScalingConfig(num_workers=int(scale["workers"]),
                                         use_gpu=bool(scale["gpu"]),
                                         resources_per_worker=per_worker),
            run_config=RunConfig(name=job_id, storage_path=storage),
        )
        trainer.fit()  # raises (the driver exits 1, its traceback in the logs) when a worker fails
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(drive())
