"""A stand-in trainer for executor tests: starts a grandchild, reports pids, then waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _report(text: str) -> None:
    """Write the pids file whole (temp file, then rename): a test polls for it to exist."""
    target = Path(os.environ["SLEEPY_PIDS"])
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)


def main() -> int:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    _report(f"{os.getpid()} {child.pid}")
    time.sleep(120)
    return 0


def fail() -> int:
    print("failing on purpose", flush=True)
    return 3


def dump_env() -> int:
    Path(os.environ["DUMP_TO"]).write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    return 0


def leave_a_daemon() -> int:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    _report(str(child.pid))
    return 0


def dump_modelyard_env() -> int:
    names = sorted(k for k in os.environ if k.startswith("MODELYARD_"))
    Path(os.environ["DUMP_TO"]).write_text(" ".join(names))
    return 0
