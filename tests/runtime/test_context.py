"""What a trainer learns about its job, read once from the environment."""

from __future__ import annotations

import json
import subprocess
import sys


def test_context_reads_job_and_distributed_environment() -> None:
    code = ("from modelyard import runtime; c = runtime.context(); "
            "print(c.job_id, c.rank, c.world_size, c.local_rank, c.is_main, c.distributed, "
            "c.hyperparameters['lr'], runtime.context() is c)")
    env = {"MODELYARD_JOB_ID": "job_x", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
           "MODELYARD_HYPERPARAMETERS": json.dumps({"lr": 0.5}), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["job_x", "1", "2", "1", "False", "True", "0.5", "True"]


def test_outside_a_job_the_context_is_a_single_local_process() -> None:
    code = "from modelyard import runtime; c = runtime.context(); print(c.rank, c.world_size)"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "1"]
