"""The local executor runs each job in its own process group and can always stop it."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.training.executors import Launch, Status
from modelyard.training.executors.local import LocalExecutor
from tests.training._live import job_pids

REPO = Path(__file__).resolve().parents[2]
TESTS = str(REPO / "tests")  # the stand-in trainer's code: bound into the job's sandbox


def _launch(tmp_path: Path, entry: str, job_id: str = "job_test", **env: str) -> Launch:
    return Launch(job_id=job_id, workers=1, log_path=tmp_path / "job.log",
                  env={"MODELYARD_ENTRYPOINT": entry, "MODELYARD_JOB_ID": job_id,
                       "PYTHONPATH": str(REPO), **env}, ro_binds={TESTS: TESTS})


def _wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _logged(tmp_path: Path, text: str) -> bool:
    log = tmp_path / "job.log"
    return log.exists() and text in log.read_text()


def test_cancel_kills_the_whole_process_group(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:main"))
    _wait(lambda: _logged(tmp_path, "worker and grandchild started"))
    assert len(job_pids("job_test")) >= 2  # the worker and its grandchild (and bwrap)
    assert ex.poll(handle).running
    ex.cancel(handle)
    _wait(lambda: not job_pids("job_test"))
    _wait(lambda: not ex.poll(handle).running)


def test_exit_code_and_output_are_captured(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:fail"))
    _wait(lambda: not ex.poll(handle).running)
    assert ex.poll(handle) == Status(running=False, exit_code=3)
    assert "failing on purpose" in (tmp_path / "job.log").read_text()


def test_a_new_executor_adopts_a_running_job(tmp_path: Path, settings: Settings) -> None:
    first = LocalExecutor(settings)
    handle = first.submit(_launch(tmp_path, "tests.training._sleepy:main", job_id="job_adopt"))
    _wait(lambda: _logged(tmp_path, "worker and grandchild started"))
    adopter = LocalExecutor(settings)  # as after a server restart: it knows only the handle
    assert adopter.poll(handle).running
    adopter.cancel(handle)
    _wait(lambda: not adopter.poll(handle).running)
    _wait(lambda: not job_pids("job_adopt"))


def test_a_job_started_before_the_sandbox_is_adopted_with_its_exit_code(
        tmp_path: Path, settings: Settings) -> None:
    # The `sh` wrapper of older servers wrote a plain integer; its process is gone now.
    exit_file = tmp_path / "job.exit"
    exit_file.write_text("7\n")
    handle = json.dumps({"pid": 2 ** 22 + 1, "start": "1", "exit_file": str(exit_file)})
    assert LocalExecutor(settings).poll(handle) == Status(running=False, exit_code=7)


def test_cuda_visible_devices_is_assigned(tmp_path: Path, settings: Settings) -> None:
    ex = LocalExecutor(settings)
    launch = dataclasses.replace(_launch(tmp_path, "tests.training._sleepy:dump_env"),
                                 gpus=[1, 3])
    handle = ex.submit(launch)
    _wait(lambda: not ex.poll(handle).running)
    assert "CUDA_VISIBLE_DEVICES=1,3" in (tmp_path / "job.log").read_text()


def test_processes_a_finished_job_left_behind_are_stopped(tmp_path: Path,
                                                          settings: Settings) -> None:
    ex = LocalExecutor(settings)
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:leave_a_daemon",
                               job_id="job_daemon"))
    _wait(lambda: not ex.poll(handle).running)
    assert "daemon started" in (tmp_path / "job.log").read_text()
    _wait(lambda: not job_pids("job_daemon"))


def test_the_servers_own_settings_do_not_leak_into_jobs(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_BLOBS__S3_SECRET_ACCESS_KEY", "server-secret")
    ex = LocalExecutor(settings)
    handle = ex.submit(_launch(tmp_path, "tests.training._sleepy:dump_modelyard_env",
                               job_id="job_x"))
    _wait(lambda: not ex.poll(handle).running)
    names = (tmp_path / "job.log").read_text().split("sleepy: env ")[1].split()
    assert "MODELYARD_JOB_ID" in names
    assert "MODELYARD_BLOBS__S3_SECRET_ACCESS_KEY" not in names


def test_a_submitted_job_can_be_found_again_without_its_handle(tmp_path: Path,
                                                               settings: Settings) -> None:
    launch = _launch(tmp_path, "tests.training._sleepy:main", job_id="job_find")
    handle = LocalExecutor(settings).submit(launch)
    later = LocalExecutor(settings)  # as after a crash before the handle was recorded
    found = later.find(launch)
    assert found == handle
    assert later.poll(found).running
    later.cancel(found)
    _wait(lambda: not later.poll(found).running)
    _wait(lambda: not job_pids("job_find"))
