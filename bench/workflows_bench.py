"""Workflow engine: per-step overhead of no-op steps, side by side with Prefect.

  * modelyard: an embedded platform (SQLite file, background engine loop); a chain of 100
    no-op steps (each takes the previous one's output) run 10 times with a fresh parameter
    (no cache hits) = 1,000 steps, once with steps in threads and once in worker processes
    (the default for inline Python). A step's overhead is the time from its upstream step's
    end to its own end, as recorded durably in the database (the step itself does nothing).
  * Prefect 3 (own venv): the same 100-task chain in a flow, 10 flow runs, per-task time from
    one task's return to the next's.

    python -m bench.workflows_bench [--runs 10] [--no-prefect]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import make_peer_venv, percentile, write_result
from modelyard.workflows import Pipeline, StepSpec

STEPS = 100


class Noop:
    """A no-op step `s<i>` taking `s<i-1>` (or `seed`): an object, so it pickles to workers."""

    def __init__(self, i: int) -> None:
        self.i = i
        arg = f"s{i - 1}" if i else "seed"
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, annotation=int)],
            return_annotation=int)
        self.__annotations__ = {arg: int, "return": int}

    def __call__(self, **kwargs: Any) -> int:
        return self.i

    def __repr__(self) -> str:
        return f"Noop({self.i})"


def _noop_step(i: int, executor: str) -> StepSpec:
    return StepSpec(name=f"s{i}", fn=Noop(i), executor=executor, cache=False)


def chain(executor: str, n: int = STEPS) -> Pipeline:
    return Pipeline(f"noop-chain-{executor}", [_noop_step(i, executor) for i in range(n)],
                    params={"seed": 0})


def chain_thread() -> Pipeline:
    return chain("thread")


def chain_process() -> Pipeline:
    return chain("process")


def measure_modelyard(executor: str, runs: int) -> dict[str, Any]:
    from modelyard.core.settings import Settings
    from modelyard.server.platform import Platform

    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform(Settings(home=Path(tmp), background=True))
        platform.start()
        try:
            wf = platform.workflows
            name = wf.register("bench", f"bench.workflows_bench:chain_{executor}", "bench").name
            overheads: list[float] = []
            walls: list[float] = []
            for r in range(runs):
                t0 = time.perf_counter()
                run = wf.run("bench", name, {"seed": r}, "bench")
                done = wf.wait("bench", run.id, timeout_s=600)
                walls.append(time.perf_counter() - t0)
                assert done.state == "succeeded", done.error
                prev = done.created_at
                for s in done.steps:
                    assert s.finished_at is not None
                    overheads.append((s.finished_at - prev).total_seconds() * 1000)
                    prev = s.finished_at
        finally:
            platform.stop()
    return _summary(overheads, walls)


def _summary(overheads: list[float], walls: list[float]) -> dict[str, Any]:
    return {"steps": len(overheads), "p50_ms": round(percentile(overheads, 50), 3),
            "p95_ms": round(percentile(overheads, 95), 3),
            "mean_ms": round(statistics.fmean(overheads), 3),
            "run_wall_s": [round(w, 3) for w in walls]}


PREFECT_SCRIPT = r'''
import json, os, sys, time
os.environ.setdefault("PREFECT_HOME", sys.argv[3])
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
from prefect import flow, task

@task(cache_policy=None, persist_result=False)
def noop(prev: int) -> int:
    return prev + 1

@flow(persist_result=False)
def chain(n: int, seed: int) -> list:
    ends = []
    x = seed
    for _ in range(n):
        x = noop(x)
        ends.append(time.perf_counter())
    return ends

n, runs = int(sys.argv[1]), int(sys.argv[2])
chain(2, -1)  # start the ephemeral API once, outside the measurement
overheads, walls = [], []
for r in range(runs):
    t0 = time.perf_counter()
    ends = chain(n, r)
    walls.append(time.perf_counter() - t0)
    prev = t0
    for e in ends:
        overheads.append((e - prev) * 1000)
        prev = e
print(json.dumps({"overheads": overheads, "walls": walls}))
'''


def measure_prefect(n: int, runs: int) -> dict[str, Any]:
    python = make_peer_venv("prefect", ["prefect>=3,<4"])
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "prefect_chain.py"
        script.write_text(PREFECT_SCRIPT)
        out = subprocess.run([str(python), str(script), str(n), str(runs), tmp],
                             capture_output=True, text=True, check=True, timeout=1800)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    version = subprocess.run([str(python), "-c", "import prefect; print(prefect.__version__)"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return {**_summary(data["overheads"], data["walls"]), "version": version}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-prefect", action="store_true")
    args = ap.parse_args()
    figures = {"steps_per_run": STEPS, "runs": args.runs,
               "thread": measure_modelyard("thread", args.runs),
               "process": measure_modelyard("process", args.runs)}
    peers: dict[str, Any] = {}
    if not args.no_prefect:
        peers["prefect"] = measure_prefect(STEPS, args.runs)
        figures["ratio_prefect_p50_over_process_p50"] = round(
            peers["prefect"]["p50_ms"] / figures["process"]["p50_ms"], 3)
        figures["ratio_prefect_p50_over_thread_p50"] = round(
            peers["prefect"]["p50_ms"] / figures["thread"]["p50_ms"], 3)
    write_result(
        name="workflows_step_overhead",
        goal="per-step overhead of no-op steps p50 <= 20 ms (steps in worker processes), "
             "side by side with Prefect on the same 100-step chain",
        metric="p50_step_overhead_ms",
        value=figures["process"]["p50_ms"], target=20.0, higher_is_better=False,
        figures=figures, peers=peers, script=__file__,
    )


if __name__ == "__main__":
    main()
