"""Training service: submit→running latency, scheduling throughput, DDP 2 workers vs 1 (CPU).

  * latency: a live embedded server (uvicorn, SQLite, local executor); a job of user code that
    does nothing is submitted N times, one after the other; latency is the server's own
    `started_at - created_at` (the process is started; the trainer's imports are not counted).
  * scheduling: one admission round (`training.scheduler.admit`) over 10,000 queued jobs of 7
    projects and 3 priorities, and one full scheduler tick (DB read of the queue + admit) with
    the same 10,000 jobs queued in SQLite and no capacity free.
  * sandbox: submit -> first line of user code, over HTTP with auth on, on two live servers
    side by side, one with the sandbox (bubblewrap) and one with MODELYARD_SECURITY__SANDBOX=off,
    jobs alternated between them; the user code's first line prints its wall clock, and the
    client's clock before the submit is the start. Both arms start jobs through the same
    supervisor, so its own start is measured apart, against the `sh` wrapper it replaced.
  * DDP: digits-cnn on the sklearn digits snapshot, same epochs: 2 workers (gloo) of 1 CPU
    against 1 worker of 1 CPU, and 1 worker of 2 CPUs (2 intra-op threads) for reference;
    the job's wall and its time-to-train (the trainer's `train_seconds`) both.

    python -m bench.training_bench [--latency-jobs 30] [--queued 10000] [--epochs 10]
                                   [--repeats 3] [--sandbox-jobs 15] [--only sandbox]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._harness import percentile, write_result


@contextmanager
def _server(home: Path, sandbox: str = "auto", **training: Any) -> Iterator[Any]:
    import socket

    import uvicorn

    from modelyard.core.settings import Settings
    from modelyard.sdk.client import Client
    from modelyard.server.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(home=home, background=True, port=port)
    settings.security.sandbox = sandbox  # type: ignore[assignment]
    for k, v in training.items():
        setattr(settings.training, k, v)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    token = settings.resolved_admin_token_file.read_text().strip()
    try:
        with Client(settings.resolved_public_url, token=token, project="bench") as c:
            c.create_project("bench")
            yield c, app.state.platform
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _noop_package() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "pass\n")
    return buf.getvalue()


def bench_latency(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp) / "home") as (c, _):
        code = {"digest": c.training.upload_code(_noop_package())["digest"],
                "entrypoint": "train.py"}
        lat = []
        for _ in range(n):
            job = c.training.submit(code=code)
            done = c.training.wait(job["id"], timeout=60, poll_s=0.05)
            started = datetime.fromisoformat(done["started_at"])
            created = datetime.fromisoformat(done["created_at"])
            lat.append((started - created).total_seconds())
    return {"jobs": n, "p50_s": statistics.median(lat), "p95_s": percentile(lat, 95),
            "max_s": max(lat), "mean_s": statistics.fmean(lat)}


FIRST_LINE = "import time; print(f'FIRST-LINE {time.time():.6f}', flush=True)\n"


def bench_sandbox(n: int) -> dict[str, Any]:
    """Submit -> first line of user code, sandbox on and off, jobs alternated (`n` each)."""
    from contextlib import ExitStack

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", FIRST_LINE)
    lat: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        arms = {arm: stack.enter_context(_server(Path(tmp) / arm, sandbox=mode))
                for arm, mode in (("on", "auto"), ("off", "off"))}
        modes = {arm: platform.training.sandbox.mode for arm, (_, platform) in arms.items()}
        assert modes == {"on": "bubblewrap", "off": "off"}, modes
        codes = {arm: {"digest": c.training.upload_code(buf.getvalue())["digest"],
                       "entrypoint": "train.py"} for arm, (c, _) in arms.items()}
        for i in range(2 * n + 2):
            arm = ("on", "off")[i % 2] if (i // 2) % 2 == 0 else ("off", "on")[i % 2]
            c = arms[arm][0]
            t0 = time.time()
            job = c.training.submit(code=codes[arm])
            done = c.training.wait(job["id"], timeout=60, poll_s=0.05)
            log = "".join(c.training.logs(job["id"]))
            assert done["state"] == "succeeded", log
            first = float(log.split("FIRST-LINE ")[1].split()[0])
            if i >= 2:  # the first of each arm warms its server up (imports, caches)
                lat[arm].append(first - t0)
    on, off = lat["on"], lat["off"]
    paired = [a - b for a, b in zip(on, off, strict=True)]
    out = {"jobs_per_arm": n, "on_s": on, "off_s": off,
           "min_on_s": min(on), "min_off_s": min(off),
           "median_on_s": statistics.median(on), "median_off_s": statistics.median(off),
           "added_min_ms": (min(on) - min(off)) * 1000,
           "added_median_ms": (statistics.median(on) - statistics.median(off)) * 1000,
           "added_paired_median_ms": statistics.median(paired) * 1000}
    sup = bench_supervisor_start(max(20, n))
    # Against the path before the sandbox (an `sh` wrapper, no supervisor): a conservative
    # figure, medians throughout.
    return {**out, "supervisor": sup, "added_vs_sh_wrapper_median_ms": (
        out["added_paired_median_ms"] + sup["median_supervisor_ms"] - sup["median_sh_wrapper_ms"])}


def bench_supervisor_start(n: int) -> dict[str, Any]:
    """What the supervisor itself costs (both arms above run it): an unconfined run of `true`
    through it, against the `sh` wrapper that started jobs before it; alternated."""
    import subprocess

    from modelyard.core.settings import Settings
    from modelyard.sandbox import Limits, Sandbox, Spec

    wrapper = ('"$@"; code=$?; echo $code > "$EXIT.tmp" && mv "$EXIT.tmp" "$EXIT"; '
               'exit $code')
    times: dict[str, list[float]] = {"supervisor": [], "sh_wrapper": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings.security.sandbox = "off"
        sandbox = Sandbox(settings)
        spec = Spec(argv=["/bin/true"], env={}, limits=Limits(), exit_file=Path(tmp) / "x.exit")
        for _ in range(n):
            t0 = time.perf_counter()
            sandbox.run(spec, subprocess.DEVNULL, subprocess.DEVNULL)
            times["supervisor"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(["/bin/sh", "-c", wrapper, "sh", "/bin/true"], check=True,
                           env={"EXIT": f"{tmp}/y.exit"}, start_new_session=True)
            times["sh_wrapper"].append(time.perf_counter() - t0)
    return {"runs": n, **{f"min_{k}_ms": min(v) * 1000 for k, v in times.items()},
            **{f"median_{k}_ms": statistics.median(v) * 1000 for k, v in times.items()}}


def bench_scheduling(queued: int) -> dict[str, Any]:
    from modelyard.training.scheduler import Capacity, Demand, admit

    demands = [Demand(f"j{i}", f"p{i % 7}", 1.0, 0, 512, i % 3, float(i)) for i in range(queued)]
    cap = Capacity(cpu=64, gpu=0, memory_mb=10**9)
    rounds, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3.0:
        admit(demands, [], cap)
        rounds += 1
    pure = rounds / (time.perf_counter() - t0)

    from modelyard.core.ids import utcnow
    from modelyard.training.models import Job, JobState, Resources

    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp) / "home",
                                                       capacity_cpus=1.0) as (_, platform):
        svc = platform.training
        svc.stop()  # measure ticks ourselves, without the background loop
        now = utcnow()
        for i in range(queued):
            svc.store.add(Job(
                id=f"job_bench{i:06d}", project="bench", name="b", state=JobState.queued,
                trainer=None, code=None, code_hash="0" * 64, dataset_snapshot=None,
                hyperparameters={}, resources=Resources(cpu=2.0), priority=i % 3, timeout_s=60,
                max_retries=0, attempt=0, created_by="admin", created_at=now, queued_at=now,
                scheduled_at=None, started_at=None, finished_at=None, run_id=None,
                experiment="b", exit_code=None, message="", checkpoint=None, model_version=None,
                progress={}, gpus=[]))
        ticks, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 5.0:
            svc.loop.wake()  # as after a submit: the round must decide again
            svc.tick()
            ticks += 1
        full = ticks / (time.perf_counter() - t0)
    return {"queued": queued, "admit_rounds_per_s": pure, "tick_rounds_per_s": full,
            "admit_jobs_considered_per_s": pure * queued,
            "tick_jobs_considered_per_s": full * queued}


DDP_RUNS = ((1, 1.0), (2, 1.0), (1, 2.0))  # (workers, CPUs per worker): 2x1 against 1x1 and 1x2


def bench_ddp(epochs: int, repeats: int) -> dict[str, Any]:
    """Each configuration `repeats` times, interleaved (a busy spell of the machine hits every
    configuration alike); medians of the job's wall (started -> finished: process start-up,
    imports, data, training, ONNX export and registration) and of its time-to-train (the
    trainer's own clock over the epoch loop, start-up, data loading and export excluded)."""
    import os

    runs: dict[str, list[dict[str, Any]]] = {f"{w}x{c:g}cpu": [] for w, c in DDP_RUNS}
    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp) / "home") as (c, _):
        c.datasets.import_builtin("digits", "sklearn:digits")
        snap = c.datasets.snapshot("digits")
        for _ in range(repeats):
            for workers, cpu in DDP_RUNS:
                load = os.getloadavg()[0]
                job = c.training.submit("digits-cnn", snap["id"],
                                        hyperparameters={"epochs": epochs},
                                        resources={"cpu": cpu, "workers": workers})
                done = c.training.wait(job["id"], timeout=600, poll_s=0.2)
                wall = (datetime.fromisoformat(done["finished_at"])
                        - datetime.fromisoformat(done["started_at"])).total_seconds()
                runs[f"{workers}x{cpu:g}cpu"].append({
                    "state": done["state"], "wall_s": wall,
                    "train_s": done["progress"].get("train_seconds"),
                    "val_accuracy": done["progress"].get("val_accuracy"),
                    "loadavg_1m_before": round(load, 2)})
    out: dict[str, Any] = {"epochs": epochs, "repeats": repeats, "runs": runs}
    for key, rs in runs.items():
        out[key] = {"median_wall_s": statistics.median(r["wall_s"] for r in rs),
                    "median_train_s": statistics.median(r["train_s"] or float("nan") for r in rs),
                    "val_accuracy": [r["val_accuracy"] for r in rs],
                    "all_succeeded": all(r["state"] == "succeeded" for r in rs)}
    one, two, wide = out["1x1cpu"], out["2x1cpu"], out["1x2cpu"]
    out["train_speedup_2_vs_1"] = one["median_train_s"] / two["median_train_s"]
    out["wall_speedup_2_vs_1"] = one["median_wall_s"] / two["median_wall_s"]
    out["train_speedup_2x1_vs_1x2"] = wide["median_train_s"] / two["median_train_s"]
    # Round by round (the runs of one round are minutes apart, under much the same load).
    paired = [a["train_s"] / b["train_s"] for a, b in zip(runs["1x1cpu"], runs["2x1cpu"],
                                                          strict=True)
              if a["train_s"] and b["train_s"]]
    out["train_speedup_2_vs_1_by_round"] = paired
    out["median_train_speedup_2_vs_1_by_round"] = statistics.median(paired) if paired else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-jobs", type=int, default=30)
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each DDP configuration")
    ap.add_argument("--sandbox-jobs", type=int, default=15, help="jobs per arm, sandbox on/off")
    ap.add_argument("--only", choices=["latency", "scheduling", "ddp", "sandbox"],
                    action="append", help="run only these parts (repeat it); default: all")
    args = ap.parse_args()
    parts = set(args.only or ["latency", "scheduling", "ddp", "sandbox"])

    if "latency" in parts:
        lat = bench_latency(args.latency_jobs)
        write_result("training_submit_latency", "submit→running ≤ 0.3 s on the embedded default",
                     "p50_seconds", lat["p50_s"], 0.3, False, lat, {}, __file__)
    if "sandbox" in parts:
        box = bench_sandbox(args.sandbox_jobs)
        write_result("training_sandbox_cost", "the sandbox adds ≤ 50 ms to submit → first line "
                     "of user code (HTTP, auth on; sandbox on vs off, alternated; minimum of "
                     "each arm)", "added_min_ms", box["added_min_ms"], 50.0, False, box, {},
                     __file__)
    if "scheduling" in parts:
        sched = bench_scheduling(args.queued)
        write_result("training_scheduling", "a scheduling round over 10,000 queued jobs ≥ 2 / s "
                     "(full tick, DB included)", "tick_rounds_per_s", sched["tick_rounds_per_s"],
                     2.0, True, sched, {}, __file__)
    if "ddp" in parts:
        ddp = bench_ddp(args.epochs, args.repeats)
        write_result(
            "training_ddp_cpu",
            "report DDP 2 workers vs 1 on CPU (digits-cnn, 1 CPU per worker, same accuracy "
            "band): the issue sets no target; 1.0 marks break-even (2 workers no slower than "
            "1), not a requirement. value = time-to-train speedup (epoch loop, start-up and "
            "export excluded); the whole job's wall speedup is figures.wall_speedup_2_vs_1",
            "train_speedup_2_vs_1", ddp["train_speedup_2_vs_1"], 1.0, True, ddp, {}, __file__)


if __name__ == "__main__":
    main()
