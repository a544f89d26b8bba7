"""A server that stops (or is killed) while a job runs: the next one adopts the job or retries it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.ports import free_port, wait_for_port
from tests.training._live import job_pids, serve

pytestmark = pytest.mark.e2e


def _settings(tmp_path: Path) -> Settings:
    port = free_port()
    return Settings(home=tmp_path / "home", background=True, port=port,
                    public_url=f"http://127.0.0.1:{port}")


def _client(s: Settings) -> Client:
    token = s.resolved_admin_token_file.read_text().strip()
    return Client(s.resolved_public_url, token=token, project="alpha")


def _start_training(s: Settings, **submit: Any) -> str:
    """Submits digits-cnn and returns once it has saved its first checkpoint."""
    with _client(s) as c:
        c.create_project("alpha")
        c.datasets.import_builtin("digits", "sklearn:digits")
        snap = c.datasets.snapshot("digits")
        job = c.training.submit("digits-cnn", snap["id"], **submit)
        deadline = time.monotonic() + 90
        while c.training.get(job["id"])["checkpoint"] is None:
            assert time.monotonic() < deadline, "the job saved no checkpoint"
            time.sleep(0.1)
        return str(job["id"])


def _starts(log: str) -> int:
    return log.count("--- modelyard: attempt")


def test_a_restarted_server_adopts_a_job_that_kept_running(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with serve(s):
        job_id = _start_training(s, hyperparameters={"epochs": 6})
    assert job_pids(job_id), "the job should outlive its server"
    with serve(s), _client(s) as c:
        done = c.training.wait(job_id, timeout=120)
        log = "".join(c.training.logs(job_id))
    assert done["state"] == "succeeded", log
    assert done["attempt"] == 0
    assert _starts(log) == 1  # never started twice
    assert done["model_version"] is not None


def test_a_job_lost_with_its_server_is_retried_from_its_checkpoint(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with serve(s):
        job_id = _start_training(s, hyperparameters={"epochs": 6}, max_retries=1)
    for pid in job_pids(job_id):  # the machine went down with the server
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    while job_pids(job_id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with serve(s), _client(s) as c:
        done = c.training.wait(job_id, timeout=120)
        log = "".join(c.training.logs(job_id))
    assert done["state"] == "succeeded", log
    assert done["attempt"] == 1
    assert "resuming from the checkpoint of epoch" in log
    assert _starts(log) == 2


def _server_process(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`modelyard server` as its own process, as a user runs it (so it can be killed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from modelyard.cli.main import main; main()", "server",
             "--port", str(s.port), "--home", str(s.home)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_for_port(s.port, timeout=120)
    return proc


def _job_workers(job_id: str) -> int:
    """Worker processes of the job alive now (its supervisor and the bubblewrap processes
    around the worker, whose argv names the worker too, not counted)."""
    count = 0
    for pid in job_pids(job_id):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        count += (b"modelyard.runtime.worker" in argv and b"-c" not in argv
                  and Path(argv[0].decode()).name != "bwrap")
    return count


def test_a_killed_server_process_ends_with_its_job_succeeded_and_never_run_twice_at_once(
        tmp_path: Path) -> None:
    s = _settings(tmp_path)
    log = tmp_path / "server.log"
    server = _server_process(s, log)
    try:
        job_id = _start_training(s, hyperparameters={"epochs": 8}, max_retries=1)
        server.send_signal(signal.SIGKILL)  # no shutdown of any kind
        server.wait(timeout=30)
        assert job_pids(job_id), "the job should outlive its killed server"
        server = _server_process(s, log)
        most = 0
        with _client(s) as c:
            deadline = time.monotonic() + 180
            while (job := c.training.get(job_id))["state"] not in ("succeeded", "failed",
                                                                    "cancelled"):
                most = max(most, _job_workers(job_id))
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            job_log = "".join(c.training.logs(job_id))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert job["state"] == "succeeded", job_log + log.read_text()
    assert most <= 1  # one attempt at a time
    if job["attempt"] == 0:  # adopted: it ran through
        assert _starts(job_log) == 1
    else:  # lost and retried: from its checkpoint
        assert "resuming from the checkpoint of epoch" in job_log
        assert _starts(job_log) == 2
    assert job["model_version"] is not None
