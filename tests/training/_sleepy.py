"""A stand-in trainer for executor tests. It runs in the job's sandbox, so it reports through
its output (the job log) rather than files: the test's own directories are out of its sight."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main() -> int:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("sleepy: worker and grandchild started", flush=True)
    time.sleep(120)
    return 0


def fail() -> int:
    print("failing on purpose", flush=True)
    return 3


def dump_env() -> int:
    print(f"sleepy: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}", flush=True)
    return 0


def leave_a_daemon() -> int:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                     start_new_session=True)
    print("sleepy: daemon started", flush=True)
    return 0


def dump_modelyard_env() -> int:
    names = sorted(k for k in os.environ if k.startswith("MODELYARD_"))
    print("sleepy: env " + " ".join(names), flush=True)
    return 0
