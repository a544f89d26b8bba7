"""The executor contract: three methods between the scheduler and wherever jobs run."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class Launch:
    """Everything an executor needs to start one job attempt."""

    job_id: str
    workers: int
    env: dict[str, str]  # added to the job's environment (MODELYARD_*)
    log_path: Path
    gpus: list[int] = field(default_factory=list)
    cpu: float = 1.0
    memory_mb: int = 1024  # per worker, like cpu and gpus
    processes: int = 256  # per worker: processes and threads
    disk_mb: int = 1024  # per worker: the job's private work dir
    timeout_s: float | None = None  # wall time of this attempt
    # Host paths the job reads, and where it sees them (its dataset snapshot's files).
    ro_binds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """`running`, or `exited` with the exit code (None when it vanished without one) and,
    when a limit ended it, the reason ("exceeded its memory limit (512 MB)") and which limit
    (`memory_mb`, `processes`, `disk_mb`, `wall_s`)."""

    running: bool
    exit_code: int | None = None
    reason: str | None = None
    limit: str | None = None


class Executor(abc.ABC):
    """Starts, watches and stops job processes.

    `submit` returns an opaque handle (a string the service persists); `poll` and `cancel` take
    it, also in a later server process, so a restarted server adopts jobs still running.
    `poll` never raises for a job that is gone: it answers `Status(running=False)`.
    `cancel` stops the job and everything it started; cancelling a finished job is a no-op.
    An executor that learns of a job's exit as it happens calls `on_exit` (the scheduler's
    wake-up, set by the service), so the scheduler does not wait for its next poll.
    """

    on_exit: Callable[[], None] | None = None
    # True for an executor that runs user code on this machine: it takes the server's
    # Sandbox (`open_executor(settings, sandbox)`), and submits are refused when it may not run.
    runs_user_code_here: ClassVar[bool] = False

    @abc.abstractmethod
    def submit(self, launch: Launch) -> str: ...

    @abc.abstractmethod
    def poll(self, handle: str) -> Status: ...

    @abc.abstractmethod
    def cancel(self, handle: str) -> None: ...

    def find(self, launch: Launch) -> str | None:
        """The handle of `launch` if it was submitted but its handle may not have been recorded
        (a server that died between the two); None when the executor cannot tell.

        The default reads the handle `remember` wrote beside the job's log."""
        try:
            return launch.log_path.with_suffix(".handle").read_text() or None
        except OSError:
            return None

    @staticmethod
    def remember(launch: Launch, handle: str) -> str:
        """Write the handle beside the job's log (for `find`) and return it."""
        launch.log_path.with_suffix(".handle").write_text(handle)
        return handle

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release what the executor holds (not the jobs: they keep running)."""
