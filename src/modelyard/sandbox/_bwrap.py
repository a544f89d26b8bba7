"""The bubblewrap command line of one run: what the sandbox sees, and as whom it runs.

Mount order matters: the private tmpfs for /tmp first, then the system and the Python
environment read-only (a venv under /tmp shows through), then /dev/shm, then masks (an empty tmpfs, or /dev/null over a file) on every
protected path that lies under something bound, and the run's own read-only binds last, so
a dataset under the blob root shows while the rest of the blob root stays hidden.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import modelyard
from modelyard.sandbox._spec import Spec

WORK = "/tmp"  # the cwd, HOME and TMPDIR of a run without a work dir of its own
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
INFO_FD = 3  # the supervisor puts its pipe there before it runs bwrap
MIB = 1024 * 1024


@dataclass(frozen=True)
class Layout:
    """What every run on this server shares: the read-only paths and the paths to hide."""

    bwrap: str
    ro_paths: tuple[str, ...]
    masks: tuple[str, ...] = ()
    setpriv: str = "/usr/bin/setpriv"
    prlimit: str = "/usr/bin/prlimit"
    gpu_devices: tuple[str, ...] = field(default_factory=tuple)


def python_paths() -> tuple[str, ...]:
    """The Python environment the runs use: this interpreter's prefixes, where its binary
    really lives, and modelyard's source dir when it is installed editable (not under them)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent),
             str(Path(modelyard.__file__).resolve().parent.parent)}
    return _outermost(p for p in paths if os.path.isdir(p))


def protected_masks(protected: Iterable[Path], bound: Iterable[str]) -> tuple[str, ...]:
    """The protected paths that a bound path would show (the rest are not in the sandbox)."""
    roots = [Path(os.path.realpath(b)) for b in bound]
    masks = []
    for p in protected:
        real = Path(os.path.realpath(p))
        if not real.exists():
            continue  # nothing there to hide (and bwrap cannot mount on it)
        if any(real == r or r in real.parents for r in roots):
            masks.append(str(real))
    return _outermost(masks)  # a mask inside another is hidden already


def gpu_devices() -> tuple[str, ...]:
    try:
        names = os.listdir("/dev")
    except OSError:
        return ()
    return tuple(f"/dev/{n}" for n in sorted(names) if n.startswith("nvidia"))


class _Mounts:
    """bwrap arguments in order, with the directories leading to each mount point made first:
    bwrap makes missing ones 0700, which would shut a run's uid out of its own binds."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self._mounts: list[tuple[str, bool]] = []  # (sandbox path, is a host tree)

    def add(self, args: list[str], dest: str, host_tree: bool) -> None:
        parts = Path(dest).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if not self._exists(parent):
                self.args += ["--dir", parent]
                self._mounts.append((parent, False))
        self.args += args
        self._mounts.append((dest, host_tree))

    def _exists(self, path: str) -> bool:
        """Whether `path` is there already: made by us, or inside a bound host tree (and not
        under a tmpfs mounted on top of it since)."""
        for mount, host_tree in reversed(self._mounts):
            if path == mount:
                return True
            if path.startswith(mount.rstrip("/") + "/"):
                return host_tree and os.path.isdir(path)
        return False


def argv(layout: Layout, spec: Spec, uid: int | None) -> list[str]:
    """bwrap ... -- [setpriv to `uid`] [prlimit] spec.argv."""
    a = [layout.bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
         "--unshare-cgroup-try", "--info-fd", str(INFO_FD)]
    # The host's name is kept (in a uts namespace of the run's own): torchrun's rendezvous
    # resolves it, and /etc/hosts names only the host's.
    if uid is None:  # an unprivileged server: a user namespace of its own instead of a uid
        a += ["--unshare-user", "--disable-userns"]
    else:  # bwrap is privileged as root; setpriv below needs these two, then drops all
        a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    m = _Mounts()
    # The private /tmp first: a Python environment or source tree that lives under /tmp (a
    # venv made there, a CI checkout) is then bound on top of it, not hidden beneath it.
    m.add(["--perms", "1777", "--size", str(spec.limits.disk_mb * MIB), "--tmpfs", WORK],
          WORK, host_tree=False)
    for path in SYSTEM:
        if os.path.islink(path):
            m.add(["--symlink", os.readlink(path), path], path, host_tree=False)
        elif os.path.isdir(path):
            m.add(["--ro-bind", path, path], path, host_tree=True)
    for path in layout.ro_paths:
        m.add(["--ro-bind", path, path], path, host_tree=True)
    if spec.gpus:
        m.add(["--ro-bind", "/sys", "/sys"], "/sys", host_tree=True)
        for dev in layout.gpu_devices:
            m.add(["--dev-bind", dev, dev], dev, host_tree=False)
    else:  # the CPU count (os.cpu_count, torch) and nothing else of /sys
        cpu = "/sys/devices/system/cpu"
        m.add(["--ro-bind-try", cpu, cpu], cpu, host_tree=True)
    m.add(["--proc", "/proc"], "/proc", host_tree=False)
    m.add(["--dev", "/dev"], "/dev", host_tree=False)
    m.add(["--perms", "1777", "--size", str(spec.limits.memory_mb * MIB), "--tmpfs",
           "/dev/shm"], "/dev/shm", host_tree=False)
    for mask in layout.masks:
        if os.path.isdir(mask):
            m.add(["--perms", "0755", "--tmpfs", mask], mask, host_tree=False)
        else:
            m.add(["--ro-bind", "/dev/null", mask], mask, host_tree=False)
    for host, inside in spec.ro_binds.items():
        m.add(["--ro-bind", host, inside], inside, host_tree=True)
    cwd = WORK
    if spec.work_dir is not None:
        cwd = str(spec.work_dir)
        m.add(["--bind", cwd, cwd], cwd, host_tree=True)
    a += [*m.args, "--chdir", cwd, "--"]
    if uid is not None:
        a += [layout.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
              "--inh-caps=-all", "--bounding-set=-all", "--"]
    else:  # counted in the run's own user namespace, so the server's threads do not count
        procs = spec.limits.processes
        a += [layout.prlimit, f"--nproc={procs}:{procs}", "--"]
    return a + list(spec.argv)


def _outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """The paths without those inside another of them (binding both would be redundant)."""
    real = sorted({os.path.realpath(p) for p in paths})
    kept: list[str] = []
    for p in real:
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return tuple(kept)
