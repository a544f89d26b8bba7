"""The local executor: one sandbox per job on this machine.

A job runs `python -m modelyard.runtime.worker`, or `torch.distributed.run --standalone` with
one process per worker, all in one sandbox (modelyard.sandbox) with the job's limits: memory,
processes and work-dir disk from its resources (per worker), its timeout as wall time. The
sandbox's supervisor leads the process group and writes how the job ended to a file, so a
server that restarts can still learn how a job it did not start ended (and why, when a limit
ended it). Exit files of jobs started before the sandbox hold a plain integer; they still read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from modelyard.core.settings import Settings
from modelyard.sandbox import Limits, Sandbox, Spec, read_outcome
from modelyard.training.executors.base import Executor, Launch, Status

KILL_GRACE_S = 3.0
OPEN_FILES = 4096  # a DataLoader with many workers over a Lance dataset opens many


def worker_command(workers: int) -> list[str]:
    if workers <= 1:
        return [sys.executable, "-m", "modelyard.runtime.worker"]
    # --tee 3 with role "rank": each worker's stdout and stderr line reaches the job's log as
    # "[rank0]:...", so the workers' interleaved lines say who wrote them (the copies torchrun
    # keeps to tee them go to its log dir in the sandbox's private /tmp).
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={workers}", "--role", "rank", "--tee", "3",
            "-m", "modelyard.runtime.worker"]


def _start_time(pid: int) -> str | None:
    """The process start time (clock ticks since boot), to tell a reused pid from ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def sandbox_spec(launch: Launch, exit_file: Path) -> Spec:
    """The sandbox run of one job attempt."""
    workers = max(1, launch.workers)
    env = {**launch.env, "OMP_NUM_THREADS": str(max(1, int(launch.cpu))),
           "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in launch.gpus)}
    limits = Limits(memory_mb=launch.memory_mb * workers, processes=launch.processes * workers,
                    open_files=OPEN_FILES, wall_s=launch.timeout_s,
                    disk_mb=launch.disk_mb * workers)
    return Spec(argv=worker_command(launch.workers), env=env, limits=limits,
                exit_file=exit_file, ro_binds=dict(launch.ro_binds), gpus=list(launch.gpus),
                name=launch.job_id)


class LocalExecutor(Executor):
    runs_user_code_here = True

    def __init__(self, settings: Settings, sandbox: Sandbox | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox or Sandbox(settings)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def submit(self, launch: Launch) -> str:
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        exit_file = launch.log_path.with_suffix(".exit")
        exit_file.unlink(missing_ok=True)
        launch.log_path.with_suffix(".handle").unlink(missing_ok=True)
        # Raises FailedPrecondition when user code may not run here (no sandbox, many users).
        argv = self.sandbox.command(sandbox_spec(launch, exit_file))
        with open(launch.log_path, "ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=launch.log_path.parent, start_new_session=True, close_fds=True,
            )
        with self._lock:
            self._procs[proc.pid] = proc
        threading.Thread(target=self._await, args=(proc,), daemon=True,
                         name=f"wait-{proc.pid}").start()
        handle = json.dumps({"pid": proc.pid, "start": _start_time(proc.pid),
                             "exit_file": str(exit_file)})
        return self.remember(launch, handle)

    def _await(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        if self.on_exit is not None:
            self.on_exit()

    def poll(self, handle: str) -> Status:
        h = json.loads(handle)
        pid = int(h["pid"])
        with self._lock:
            proc = self._procs.get(pid)
        if proc is not None:
            code = proc.poll()
            if code is None:
                return Status(running=True)
            with self._lock:
                self._procs.pop(pid, None)
            _signal_group(pid, signal.SIGKILL)  # leftovers (daemons the job started) go too
            return _ended(h, code)
        if self._alive(pid, h.get("start")):
            return Status(running=True)
        # A group id is never reused while a member lives, so this reaches only our leftovers.
        _signal_group(pid, signal.SIGKILL)
        return _ended(h, None)

    def cancel(self, handle: str) -> None:
        pid = int(json.loads(handle)["pid"])
        if not self._alive(pid, json.loads(handle).get("start")) and pid not in self._procs:
            return
        _signal_group(pid, signal.SIGTERM)
        threading.Thread(target=self._escalate, args=(pid,), daemon=True,
                         name=f"kill-{pid}").start()

    def _escalate(self, pid: int) -> None:
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                break
            time.sleep(0.05)
        else:
            _signal_group(pid, signal.SIGKILL)
        with self._lock:
            proc = self._procs.get(pid)
        if proc is not None:
            proc.wait(timeout=10)

    def _alive(self, pid: int, start: str | None) -> bool:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our (adopted) child
        except ChildProcessError:
            pass
        state = _state(pid)
        if state is None or state in ("Z", "X"):
            return False
        return start is None or _start_time(pid) == start


def _ended(handle: dict[str, object], fallback: int | None) -> Status:
    """How the job ended, from its exit file (written by its supervisor), else `fallback`."""
    outcome = read_outcome(Path(str(handle["exit_file"])))
    if outcome is None:
        return Status(running=False, exit_code=fallback)
    return Status(running=False, exit_code=outcome.code, reason=outcome.reason,
                  limit=outcome.limit)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies count as alive to killpg; look for a member that still runs.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pgid and stat[0] not in ("Z", "X"):
            return True
    return False
