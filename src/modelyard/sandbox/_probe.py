"""Does bubblewrap work here? Asked once per process: a trivial sandbox, run for real."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    works: bool
    bwrap: str | None
    why: str  # what was found, for /readyz and the start-up warning


@functools.lru_cache(maxsize=4)
def probe(as_uid: int | None) -> Probe:
    """Runs `true` under the same kind of sandbox the runs get (as `as_uid` when root, else in
    a user namespace of our own); any failure means bubblewrap cannot confine user code here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Probe(False, None, "bubblewrap (bwrap) is not installed")
    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if as_uid is None:
        argv += ["--unshare-user", "--", "true"]
    else:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                 "setpriv", f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Probe(False, bwrap, f"bubblewrap at {bwrap} did not run: {e}")
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()
        return Probe(False, bwrap, f"bubblewrap at {bwrap} cannot make a sandbox here: "
                                   f"{err[-1] if err else f'exit code {done.returncode}'}")
    who = f"as uid {as_uid} and up" if as_uid is not None else "in a user namespace"
    return Probe(True, bwrap, f"bubblewrap ({bwrap}) confines user code, {who}")
