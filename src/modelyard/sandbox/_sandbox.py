"""Sandbox: decides whether user code may run here, and starts each run under its supervisor."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import marshal
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from modelyard.core.errors import FailedPrecondition
from modelyard.sandbox import _bwrap
from modelyard.sandbox._probe import Probe, probe
from modelyard.sandbox._spec import Outcome, Spec, read_outcome

if TYPE_CHECKING:
    from modelyard.core.settings import Settings

log = logging.getLogger("modelyard.sandbox")
SUPERVISOR = Path(__file__).with_name("_supervisor.py")
UID_SLOTS = 65536
# What a run gets from the server's own environment: nothing secret, nothing of modelyard's.
PASS_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "HF_HUB_OFFLINE", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE")
REFUSED = ("user code is refused: this server has more than one user and no working sandbox "
           "({why}); install bubblewrap or set MODELYARD_SECURITY__SANDBOX=off")


class Sandbox:
    """Where user code runs. One per server; cheap to call from many threads.

    `count_users` tells how many users the platform has: in `auto` mode without a working
    bubblewrap, user code runs only while there is one (None: assume more, and refuse).
    `cgroups=False` makes every run use the rlimit-and-watchdog fallback (for its tests).
    """

    def __init__(self, settings: Settings, count_users: Callable[[], int] | None = None, *,
                 cgroups: bool = True) -> None:
        self.settings = settings
        self.setting: Literal["auto", "required", "off"] = settings.security.sandbox
        self.count_users = count_users
        self.cgroups = cgroups
        self._root = os.geteuid() == 0
        self._layout: _bwrap.Layout | None = None

    # what runs here ----------------------------------------------------------------------
    @property
    def probe(self) -> Probe:
        base = self.settings.security.sandbox_uid_base if self._root else None
        return probe(base)

    @property
    def mode(self) -> Literal["bubblewrap", "off"]:
        """What user code actually runs under."""
        if self.setting == "off" or not self.probe.works:
            return "off"
        return "bubblewrap"

    @property
    def detail(self) -> str:
        if self.setting == "off":
            return ("MODELYARD_SECURITY__SANDBOX=off: user code runs unconfined, with the "
                    "server's rights; for a single trusted user only")
        found = self.probe
        if found.works:
            return found.why
        if self.setting == "required":
            return f"{found.why}: user code is refused (MODELYARD_SECURITY__SANDBOX=required)"
        return (f"{found.why}: user code runs unconfined while this server has one user and is "
                "refused once a second user exists; install bubblewrap, or set "
                "MODELYARD_SECURITY__SANDBOX=off to accept the risk")

    def warn_if_unconfined(self) -> None:
        """Logs a warning when user code would run unconfined (called once at start)."""
        if self.mode == "off":
            log.warning("user code runs without a sandbox: %s", self.detail)

    def check_allowed(self) -> None:
        """Raises FailedPrecondition when user code may not run here now."""
        if self.setting == "off" or self.probe.works:
            return
        if self.setting == "required":
            raise FailedPrecondition(
                f"user code is refused: MODELYARD_SECURITY__SANDBOX=required and "
                f"{self.probe.why}; install bubblewrap (Debian: apt-get install bubblewrap)",
                {"sandbox": self.setting})
        users = self.count_users() if self.count_users is not None else None
        if users is None or users > 1:
            raise FailedPrecondition(REFUSED.format(why=self.probe.why),
                                     {"sandbox": self.setting, "users": users})

    # running -----------------------------------------------------------------------------
    def command(self, spec: Spec) -> list[str]:
        """The supervisor's argv for `spec` (run it with start_new_session=True). Writes the
        run's plan, credentials and all, to a 0600 file beside the exit file, which the
        supervisor deletes as it starts: nothing secret is on a command line."""
        self.check_allowed()
        plan = self._plan(spec)
        path = Path(f"{spec.exit_file}.plan")
        path.unlink(missing_ok=True)
        Path(spec.exit_file).unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            marshal.dump(plan, f)  # what the supervisor reads fastest (no json import)
        return [sys.executable, "-I", "-S", str(SUPERVISOR), str(path)]

    def run(self, spec: Spec, stdout: IO[Any] | int | None = None,
            stderr: IO[Any] | int | None = None) -> Outcome:
        """Runs `spec` to its end (blocking) and tells how it ended."""
        argv = self.command(spec)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True, close_fds=True)
        try:
            code = proc.wait()
        except BaseException:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise
        return read_outcome(spec.exit_file) or Outcome(code=code)

    def uid_of(self, spec: Spec) -> int | None:
        """The uid a root server runs `spec` as: one of its own per job (per-uid limits such
        as the process count then hold per job); None when not root."""
        if not self._root:
            return None
        key = spec.name or str(spec.exit_file)
        slot = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % UID_SLOTS
        return self.settings.security.sandbox_uid_base + slot

    def _plan(self, spec: Spec) -> dict[str, Any]:
        limits = spec.limits
        confined = self.mode == "bubblewrap"
        plan: dict[str, Any] = {
            "name": spec.name, "exit_file": str(spec.exit_file),
            "limits": {"memory_mb": limits.memory_mb, "processes": limits.processes,
                       "open_files": limits.open_files, "wall_s": limits.wall_s,
                       "disk_mb": limits.disk_mb},
        }
        if confined:
            uid = self.uid_of(spec)
            cwd = str(spec.work_dir) if spec.work_dir is not None else _bwrap.WORK
            plan.update(argv=_bwrap.argv(self.layout(), spec, uid), cwd="/", info_fd=True,
                        cgroup=self.cgroups, nproc=uid is not None, data_limit=not spec.gpus,
                        chown=uid if spec.work_dir is not None else None,
                        work_dir=str(spec.work_dir) if spec.work_dir else None)
        else:
            cwd = str(spec.work_dir) if spec.work_dir is not None else tempfile.mkdtemp(
                prefix="modelyard-run-")
            plan.update(argv=list(spec.argv), cwd=cwd,
                        remove_dir=cwd if spec.work_dir is None else None)
        plan["env"] = self.environment(spec, home=cwd, tmp=_bwrap.WORK if confined else cwd)
        return plan

    @staticmethod
    def environment(spec: Spec, home: str, tmp: str) -> dict[str, str]:
        """The run's whole environment: the allow-list, then what the caller gives it."""
        env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith("LC_")}
        env.update(HOME=home, TMPDIR=tmp, PYTHONUNBUFFERED="1")
        env.update(spec.env)
        return env

    def layout(self) -> _bwrap.Layout:
        if self._layout is None:
            self._layout = _bwrap.Layout(bwrap=self.probe.bwrap or "bwrap",
                                         ro_paths=_bwrap.python_paths(),
                                         gpu_devices=_bwrap.gpu_devices())
        # Masks are found again for every run: a protected path may appear after the first
        # (the database's -wal file, a data dir made later).
        masks = _bwrap.protected_masks(self.protected(), [*_bwrap.SYSTEM, *self._layout.ro_paths])
        return dataclasses.replace(self._layout, masks=masks)

    def protected(self) -> list[Path]:
        """What no run may see: the data dir (other jobs' dirs, logs and tokens are in it), the
        blob root, the database and metrics files, the admin token, wherever they are."""
        s = self.settings
        paths = [s.home, s.resolved_blob_root, s.resolved_admin_token_file]
        url = s.resolved_database_url
        if url.startswith("sqlite:///"):
            db = url.removeprefix("sqlite:///")
            paths += [Path(db + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        metrics_path = getattr(s.metrics, "path", None)
        if metrics_path:
            paths.append(Path(metrics_path))
        return paths
