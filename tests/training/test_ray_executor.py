"""The ray executor against a real local Ray cluster: digits-cnn on 1 worker (a Ray job) and on
2 workers (Ray Train's TorchTrainer), and cancel stopping the Ray job."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.errors import InvalidArgument
from modelyard.core.settings import Settings, TrainingSettings
from modelyard.sdk.client import Client
from modelyard.training.executors import Launch, open_executor
from tests._servers.live import live_server
from tests._servers.ports import free_port, wait_for_port
from tests.training._live import admin_client, digits_snapshot

pytest.importorskip("ray.job_submission")
pytestmark = pytest.mark.integration

FAIL = """
from modelyard import runtime

ctx = runtime.context()
print(f"user code on rank {ctx.rank}/{ctx.world_size}", flush=True)
if ctx.rank == ctx.world_size - 1:
    raise SystemExit(7) if ctx.world_size == 1 else RuntimeError("boom on the last rank")
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A 2-CPU Ray head on 127.0.0.1 whose jobs run this interpreter's `python`."""
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live here
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_TMPDIR": tmp, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env = {k: v for k, v in env.items() if not k.startswith("MODELYARD_")}
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    dash, gcs = free_port(), free_port()
    subprocess.run([*ray, "start", "--head", "--num-cpus=2", "--num-gpus=0",
                    "--node-ip-address=127.0.0.1", f"--port={gcs}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                    "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={tmp}"],
                   env=env, check=True, capture_output=True, timeout=120)
    try:
        wait_for_port(dash, timeout=60)
        yield f"http://127.0.0.1:{dash}"
    finally:
        stop_cluster(tmp, gcs)
        shutil.rmtree(tmp, ignore_errors=True)


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes())
            except (OSError, ValueError, IndexError):
                continue
    return found


def stop_cluster(tmp: str, gcs_port: int, grace_s: float = 10.0) -> None:
    """Stops the Ray head started on `tmp` and everything under it, and nothing else: `ray stop`
    would also stop the Ray clusters of other tests running on the machine at the same time."""
    procs = _processes()
    gcs = re.compile(rb"127\.0\.0\.1:%d(?!\d)" % gcs_port)
    ours = {pid for pid, (_, cmd) in procs.items() if tmp.encode() in cmd or gcs.search(cmd)}
    grew = True
    while grew:  # and their descendants (workers, dashboard heads, job supervisors)
        more = {pid for pid, (ppid, _) in procs.items() if ppid in ours} - ours
        ours |= more
        grew = bool(more)
    ours.discard(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ours:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in ours):
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(ray_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("ray-executor") / "home"
    base = Settings(home=home)
    settings = base.model_copy(update={"background": True, "training": TrainingSettings(
        executor="ray", ray_address=ray_cluster, poll_interval_s=0.5)})
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Settings) -> Iterator[Client]:
    yield from admin_client(server)


@pytest.fixture(scope="module")
def snap(client: Client) -> dict[str, Any]:
    return digits_snapshot(client)


def ray_job(address: str, job_id: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    jobs = [j for j in JobSubmissionClient(address).list_jobs()
            if (j.metadata or {}).get("modelyard_job_id") == job_id]
    return jobs[-1] if jobs else None


def test_one_worker_and_two_ray_train_workers_train_registered_models(
        ray_cluster: str, client: Client, snap: dict[str, Any]) -> None:
    # Half a CPU per worker, so both jobs fit the 2-CPU cluster side by side.
    jobs = [client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 5},
                                   resources={"cpu": 1 / w, "workers": w, "memory_mb": 256})
            for w in (1, 2)]
    single, ddp = (client.training.wait(j["id"], timeout=150) for j in jobs)
    single_logs = "".join(client.training.logs(single["id"]))
    ddp_logs = "".join(client.training.logs(ddp["id"]))
    assert single["state"] == "succeeded", single_logs
    assert ddp["state"] == "succeeded", ddp_logs
    for done in (single, ddp):
        assert done["progress"]["val_accuracy"] > 0.85
        version = done["model_version"]
        assert version["job_id"] == done["id"]
        assert version["metrics"]["val_accuracy"] > 0.85
        assert ray_job(ray_cluster, done["id"]).status == "SUCCEEDED"
    # The Ray jobs' output is the jobs' logs, as with the local executor.
    assert "epoch 5/5" in single_logs
    assert "rank 1/2" in ddp_logs and "epoch 5/5" in ddp_logs


def test_cancel_stops_the_ray_job(ray_cluster: str, server: Settings, client: Client,
                                  snap: dict[str, Any], tmp_path: Path) -> None:
    job = client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 200},
                                 resources={"cpu": 1, "memory_mb": 256})
    deadline = time.monotonic() + 60
    while True:
        found = ray_job(ray_cluster, job["id"])
        if found is not None and found.status == "RUNNING" \
                and "epoch 1/" in "".join(client.training.logs(job["id"])):
            break
        assert time.monotonic() < deadline, client.training.get(job["id"])
        time.sleep(0.5)
    # A restarted server that never recorded the handle still finds the running Ray job.
    fresh = open_executor(server)
    handle = fresh.find(Launch(job_id=job["id"], workers=1, env={},
                               log_path=tmp_path / "nowhere.log"))
    assert handle is not None and fresh.poll(handle).running
    assert client.training.cancel(job["id"])["state"] == "cancelled"
    deadline = time.monotonic() + 30
    while ray_job(ray_cluster, job["id"]).status != "STOPPED":
        assert time.monotonic() < deadline, ray_job(ray_cluster, job["id"]).status
        time.sleep(0.5)
    assert client.training.get(job["id"])["state"] == "cancelled"


def test_a_failing_trainer_fails_the_job_with_its_exit_code_and_logs(
        client: Client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fail.py", FAIL)
    code = client.training.upload_code(buf.getvalue())
    jobs = [client.training.submit(code={"digest": code["digest"], "entrypoint": "fail.py"},
                                   resources={"cpu": 1 / w, "workers": w, "memory_mb": 256})
            for w in (1, 2)]
    single, multi = (client.training.wait(j["id"], timeout=90) for j in jobs)
    single_logs = "".join(client.training.logs(single["id"]))
    multi_logs = "".join(client.training.logs(multi["id"]))
    assert single["state"] == "failed" and single["exit_code"] == 7, single_logs
    assert "user code on rank 0/1" in single_logs
    assert multi["state"] == "failed" and multi["exit_code"] != 0, multi_logs
    assert "boom on the last rank" in multi_logs


@pytest.mark.parametrize("address", [None, "ray://127.0.0.1:10001"])
def test_the_ray_executor_says_which_address_it_needs(settings: Settings,
                                                      address: str | None) -> None:
    bad = settings.model_copy(update={"training": TrainingSettings(executor="ray",
                                                                   ray_address=address)})
    with pytest.raises(InvalidArgument, match="dashboard address"):
        open_executor(bad)
