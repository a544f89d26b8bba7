"""The local executor runs each job in its own process group and can always stop it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.training.executors import Launch, Status
from modelyard.training.executors.local import LocalExecutor

REPO = Path(__file__).resolve().parents[2]


def _launch(tmp_path: Path, entry: str, **env: str) -> Launch:
    return Launch(job_id="job_test", workers=1, log_path=tmp_path / "job.log",
                  env={"MODELYARD_ENTRYPOINT": entry, "PYTHONPATH": str(REPO), **env})


def _wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_cancel_kills_the_whole_process_group(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    pids_file = tmp_path / "pids"
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:main",
                               SLEEPY_PIDS=str(pids_file)))
    _wait(pids_file.exists)
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    assert ex.poll(handle).running
    ex.cancel(handle)
    _wait(lambda: not _alive(worker) and not _alive(grandchild))
    _wait(lambda: not ex.poll(handle).running)


def test_exit_code_and_output_are_captured(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:fail"))
    _wait(lambda: not ex.poll(handle).running)
    assert ex.poll(handle) == Status(running=False, exit_code=3)
    assert "failing on purpose" in (tmp_path / "job.log").read_text()


def test_a_new_executor_adopts_a_running_job(tmp_path: Path, settings: Settings) -> None:
    first = LocalExecutor(settings)
    pids_file = tmp_path / "pids"
    handle = first.submit(_launch(tmp_path, "tests.training._sleepy:main",
                                  SLEEPY_PIDS=str(pids_file)))
    _wait(pids_file.exists)
    adopter = LocalExecutor(settings)  # as after a server restart: it knows only the handle
    assert adopter.poll(handle).running
    adopter.cancel(handle)
    _wait(lambda: not adopter.poll(handle).running)
    worker, grandchild = (int(p) for p in pids_file.read_text().split())
    _wait(lambda: not _alive(worker) and not _alive(grandchild))


def test_cuda_visible_devices_is_assigned(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    out = tmp_path / "env"
    launch = Launch(job_id="job_env", workers=1, log_path=tmp_path / "job.log", gpus=[1, 3],
                    env={"MODELYARD_ENTRYPOINT": "tests.training._sleepy:dump_env",
                         "PYTHONPATH": str(REPO), "DUMP_TO": str(out)})
    handle = ex.submit(launch)
    _wait(lambda: not ex.poll(handle).running)
    assert out.read_text() == "1,3"
    assert os.environ.get("DUMP_TO") is None


def test_processes_a_finished_job_left_behind_are_stopped(tmp_path: Path,
                                                          settings: Settings) -> None:
    ex = LocalExecutor(settings)
    pids_file = tmp_path / "pids"
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:leave_a_daemon",
                               SLEEPY_PIDS=str(pids_file)))
    _wait(lambda: not ex.poll(handle).running)
    daemon = int(pids_file.read_text())
    _wait(lambda: not _alive(daemon))


def test_the_servers_own_settings_do_not_leak_into_jobs(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_BLOBS__S3_SECRET_ACCESS_KEY", "server-secret")
    ex = LocalExecutor(settings)
    out = tmp_path / "env"
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:dump_modelyard_env",
                               MODELYARD_JOB_ID="job_x", DUMP_TO=str(out)))
    _wait(lambda: not ex.poll(handle).running)
    names = out.read_text().split()
    assert "MODELYARD_JOB_ID" in names
    assert "MODELYARD_BLOBS__S3_SECRET_ACCESS_KEY" not in names


def test_a_submitted_job_can_be_found_again_without_its_handle(tmp_path: Path,
                                                               settings: Settings) -> None:
    pids_file = tmp_path / "pids"
    launch = _launch(tmp_path, "tests.training._sleepy:main", SLEEPY_PIDS=str(pids_file))
    handle = LocalExecutor(settings).submit(launch)
    later = LocalExecutor(settings)  # as after a crash before the handle was recorded
    found = later.find(launch)
    assert found == handle
    assert later.poll(found).running
    later.cancel(found)
    _wait(lambda: not later.poll(found).running)
