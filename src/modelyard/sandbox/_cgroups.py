"""The run's own memory and pids cgroups, for the supervisor (standard library only, like it).

v1: a directory in each of the memory and pids hierarchies; v2: one directory under a parent
with both controllers enabled (a delegated parent). Made under the supervisor's own cgroup, so
an administrator's limits on the server hold for its jobs too.
"""

from __future__ import annotations

import _signal as signal
import os
import time

MIB = 1024 * 1024
CGROUP_ROOT = "/sys/fs/cgroup"


class Cgroup:
    """The run's own memory and pids cgroups (v1: two directories; v2: one)."""

    def __init__(self, dirs: dict[str, str], v2: bool) -> None:
        self.dirs = dirs
        self.v2 = v2

    @classmethod
    def make(cls, name: str, memory_mb: int, processes: int) -> Cgroup | None:
        """A fresh cgroup under the supervisor's own, with the limits set; None when this
        machine gives us none we may write (the caller falls back to rlimits and a watchdog)."""
        try:
            own = _own_cgroups()
        except OSError:
            return None
        made = cls._make_v1(own, name) or cls._make_v2(own, name)
        if made is None:
            return None
        try:
            made._limit(memory_mb * MIB, processes)
        except OSError:
            made.remove()
            return None
        return made

    @classmethod
    def _make_v1(cls, own: dict[str, str], name: str) -> Cgroup | None:
        dirs: dict[str, str] = {}
        for ctl in ("memory", "pids"):
            if ctl not in own or not os.path.isdir(f"{CGROUP_ROOT}/{ctl}"):
                return None
        try:
            for ctl in ("memory", "pids"):
                parent = f"{CGROUP_ROOT}/{ctl}{own[ctl].rstrip('/')}"
                _remove_stale(parent)
                os.mkdir(f"{parent}/{name}", 0o755)
                dirs[ctl] = f"{parent}/{name}"
        except OSError:
            Cgroup(dirs, v2=False).remove()
            return None
        return cls(dirs, v2=False)

    @classmethod
    def _make_v2(cls, own: dict[str, str], name: str) -> Cgroup | None:
        if "" not in own:
            return None
        root = CGROUP_ROOT if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers") else (
            f"{CGROUP_ROOT}/unified")
        parent = f"{root}{own[''].rstrip('/')}"
        try:
            enabled = read_text(f"{parent}/cgroup.subtree_control").split()
            if not {"memory", "pids"} <= set(enabled):
                # Allowed only in a cgroup without processes of its own (a delegated parent).
                _write(f"{parent}/cgroup.subtree_control", "+memory +pids")
            _remove_stale(parent)
            path = f"{parent}/{name}"
            os.mkdir(path, 0o755)
        except OSError:
            return None
        return cls({"memory": path, "pids": path}, v2=True)

    def _limit(self, memory: int, processes: int) -> None:
        mem = self.dirs["memory"]
        if self.v2:
            _write(f"{mem}/memory.max", str(memory))
            _write_if_there(f"{mem}/memory.swap.max", "0")
        else:
            _write(f"{mem}/memory.limit_in_bytes", str(memory))
            _write_if_there(f"{mem}/memory.memsw.limit_in_bytes", str(memory))
        _write(f"{self.dirs['pids']}/pids.max", str(processes))

    def join(self) -> None:
        """Put the calling process in the cgroup (the child, before it runs the command)."""
        for path in set(self.dirs.values()):
            _write(f"{path}/cgroup.procs", "0")

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        return _counter(f"{self.dirs['memory']}/{name}", "oom_kill")

    def forks_refused(self) -> int:
        return _counter(f"{self.dirs['pids']}/pids.events", "max")

    def kill_all(self) -> None:
        for path in set(self.dirs.values()):
            try:
                for pid in read_text(f"{path}/cgroup.procs").split():
                    kill_quietly(int(pid), signal.SIGKILL)
            except OSError:
                pass

    def remove(self) -> None:
        for path in set(self.dirs.values()):
            for _ in range(50):  # a cgroup is busy until its last process is reaped
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill_all()
                    time.sleep(0.02)


def _remove_stale(parent: str) -> None:
    """Removes the empty cgroups of supervisors that were killed before they could (a cancel
    that had to SIGKILL): their names end in the supervisor's pid."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith("modelyard-")]
    except OSError:
        return
    for name in names:
        pid = name.rsplit("-", 1)[-1]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        try:
            os.rmdir(f"{parent}/{name}")  # refused while a process is still in it
        except OSError:
            pass


def _own_cgroups() -> dict[str, str]:
    """{controller: path} of this process ("" for the v2 hierarchy)."""
    found: dict[str, str] = {}
    for line in read_text("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for ctl in controllers.split(","):
            found[ctl] = path
    return found


def _counter(path: str, key: str) -> int:
    try:
        for line in read_text(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _write_if_there(path: str, text: str) -> None:
    if os.path.exists(path):
        _write(path, text)


def kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
