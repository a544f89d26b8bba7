"""Killing the process that drives a pipeline loses nothing: a new engine resumes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from modelyard.core.settings import Settings
from modelyard.server.platform import Platform
from tests.workflows._packages import count

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"the host process exited early: {proc.stderr.read()!r}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent, the supervisor, reaps it).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_killed_engine_resumes_from_finished_steps_without_repeating_side_effects(
        tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.workflows._crash_host", str(home),
                             str(work)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        _wait_for(work / "s2.running", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stderr.close()  # type: ignore[union-attr]
    run_id = (work / "run_id").read_text()
    assert (count(str(work), "s1"), count(str(work), "s2"), count(str(work), "s3")) == (1, 1, 0)
    # The step's process outlives its engine only until it notices nobody reads its answer.
    orphan = int((work / "s2.log").read_text().split()[0])
    deadline = time.monotonic() + 30
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan), "the step's process went on after its engine died"

    (work / "release").touch()
    platform = Platform(Settings(home=home, background=False,
                                 security={"sandbox": "off"}))  # type: ignore[arg-type]
    platform.start()
    try:
        before = platform.workflows.get_run("alpha", run_id)
        assert before.state == "running"
        assert {s.step: s.state for s in before.steps}["s2"] == "running"
        run = platform.workflows.wait("alpha", run_id, timeout_s=60)
    finally:
        platform.stop()
    assert run.state == "succeeded", run.error
    steps = {s.step: s for s in run.steps}
    assert steps["s3"].output == "one+job-1+three"
    assert count(str(work), "s1") == 1  # finished before the crash: never again
    assert count(str(work), "s2") == 2  # in flight at the crash: ran again...
    assert count(str(work), "submitted") == 1  # ...re-attaching to its recorded side effect
    assert steps["s2"].effects == {"job": "job-1"}
    assert count(str(work), "s3") == 1
