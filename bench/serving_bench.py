"""Model serving: modelyard vs LitServe, Ray Serve, BentoML, TorchServe and plain FastAPI.

Every server serves the same ONNX models (bench/serving_models.py: the builtin digits-cnn and
intent-classifier networks, trained a few epochs here) through ONNX Runtime with one intra-op
thread, in its own venv, with `WORKERS` worker processes / replicas and its own dynamic
batching (max batch 32, 2 ms), and answers the same request: one raw input as JSON (an 8x8
image, or an utterance that the server tokenizes with the model's own preprocessing). modelyard
runs as a user deploys it for serving: `modelyard serve --workers 2` (a replica on the main
server's database), the deployment pinned, the request through `/predict` with a bearer token.
The headline uses the one-machine default, SQLite in the data dir; the same replicas on a shared
PostgreSQL (where each replica's prediction events go to the server through that database) are
measured in the same run and reported beside it (`figures.modelyard_postgresql`), and so is
the digits deployment through the Open Inference Protocol (`POST /v2/models/digits/infer`, a
JSON FP32 tensor; `figures.modelyard_v2_infer`; no peer here speaks it).

One load generator drives them all: `wrk` (C, one thread, closed loop) with a fixed POST body.
Concurrency is swept upward; per server the result is the highest throughput (answered 2xx per
second) whose p99 is at most 50 ms, and the p50 at concurrency 1 of a no-op model (Flatten +
Slice: no arithmetic) is the per-request overhead. Before any load, each server's answers to
64 test images are checked against ONNX Runtime run here.

Results: `serving_throughput.json` (modelyard / best peer at p99 <= 50 ms per model; goal >= 1.5;
value: the lower of the digits and intent ratios) and `serving_batching_gain.json` (modelyard
with batching / max batch size 1; goal >= 3; value: the gain on `intent-wide`, whose network
dominates a request; the digits-cnn gain beside it). modelyard's batch sizes (one worker's
Prometheus histogram) are kept with each of its results.

    python -m bench.serving_bench [--duration 5] [--peers fastapi,litserve,...]
                                  [--models digits,intent,intent-wide] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import serving_models
from bench import serving_peers as peers
from bench._harness import write_result
from bench.serving_models import Workload

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "serving_wrk.lua"
P99_BOUND_MS = 50.0
LEVELS = [1, 2, 4, 8, 16, 32, 64, 128]
MIN_LEVEL = 16
ALL_PEERS = ["fastapi", "litserve", "ray_serve", "bentoml", "torchserve"]
ALL_MODELS = ["digits", "intent", "intent-wide"]
# deployment -> (workload, batching): what modelyard_home deploys. Each deployment has a model
# of its own (a loaded version is batched as the deployment that loaded it asked, so a
# batch-size-1 deployment of the batched one's version would be batched too).
DEPLOYMENTS = {"digits": ("digits", {}), "digits-b1": ("digits", {"max_batch_size": 1}),
               "noop": ("noop", {}), "intent": ("intent", {}),
               "intent-wide": ("intent-wide", {}),
               "intent-wide-b1": ("intent-wide", {"max_batch_size": 1})}


# -- processes ------------------------------------------------------------------------------------
def free_port() -> int:
    """A port with the next two free as well (TorchServe's management and metrics ports)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port > 65000:
            continue
        try:
            for p in (port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


class Server:
    """A server process in its own session, so stopping it ends every process it started."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str],
                 url: str, headers: dict[str, str]) -> None:
        self.name, self.url, self.headers = name, url, headers
        self.log = cwd / f"{name}.log"
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def post(self, body: bytes, timeout: float = 10) -> Any:
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **self.headers})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def wait_ready(self, body: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.tail()}")
            try:
                self.post(body, timeout=5)
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        try:  # children that outlived the leader (Ray's raylet, TorchServe's workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def check_answers(server: Server, work: Workload) -> int:
    """Sends each check input alone; returns how many labels differ from ONNX Runtime's."""
    return sum(work.label_of(server.post(work.body_of(raw))) != label
               for raw, label in zip(work.check_inputs, work.want, strict=True))


class BatchProbe:
    """Rows per batch the model ran, from one worker's Prometheus histogram (each worker has
    its own): read over one kept-alive connection, so every reading is the same worker's."""

    def __init__(self, server: Server, model: str) -> None:
        import http.client

        host, port = server.url.split("//", 1)[1].split("/", 1)[0].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        self.model = model

    def read(self) -> tuple[float, float, dict[str, float]]:
        """(batches, rows, cumulative batches by the bucket's upper bound) so far."""
        self.conn.request("GET", "/metrics")
        text = self.conn.getresponse().read().decode()
        total = count = 0.0
        buckets: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("modelyard_serving_batch_size") or \
                    f'model="{self.model}"' not in line:
                continue
            value = float(line.rsplit(" ", 1)[1])
            if line.startswith("modelyard_serving_batch_size_sum"):
                total = value
            elif line.startswith("modelyard_serving_batch_size_count"):
                count = value
            elif 'le="' in line:
                buckets[line.split('le="', 1)[1].split('"', 1)[0]] = value
        return count, total, buckets


# -- load -----------------------------------------------------------------------------------------
def wrk(server: Server, body_file: Path, concurrency: int, duration: float) -> dict[str, Any]:
    env = {**os.environ, "WRK_BODY": str(body_file),
           "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in server.headers.items())}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
         "-s", str(LUA), server.url], capture_output=True, text=True, env=env, check=True,
        timeout=duration + 60)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON "):])
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    seconds = raw["duration_us"] / 1e6
    return {"concurrency": concurrency, "throughput_rps": round((raw["requests"] - errors)
                                                                / seconds, 1),
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "errors": errors, **raw}


def sweep(server: Server, body_file: Path, duration: float,
          probe: BatchProbe | None = None) -> dict[str, Any]:
    """Closed-loop levels upward until p99 passes the bound at two levels in a row (never
    before `MIN_LEVEL`, so one stall of a busy machine does not end a sweep); the best level
    within the bound. With a `probe`, each level has the mean rows per batch one worker ran."""
    wrk(server, body_file, 8, 2)  # warm-up: JIT, pools, connections
    levels: list[dict[str, Any]] = []
    over = 0
    for c in LEVELS:
        before = probe.read() if probe else None
        r = wrk(server, body_file, c, duration)
        rows = ""
        if probe and before:
            after = probe.read()
            batches = after[0] - before[0]
            r["batches_one_worker"] = int(batches)
            r["rows_per_batch_one_worker"] = round((after[1] - before[1]) / batches, 2) \
                if batches else None
            rows = f"  rows/batch {r['rows_per_batch_one_worker']}"
        levels.append(r)
        print(f"   {server.name:<16} c={c:<4} {r['throughput_rps']:>8.0f} rps  "
              f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
              f"{rows}", flush=True)
        over = over + 1 if r["p99_ms"] > P99_BOUND_MS or r["errors"] else 0
        if over >= 2 and c >= MIN_LEVEL:
            break
    ok = [r for r in levels if r["p99_ms"] <= P99_BOUND_MS and not r["errors"]]
    best = max(ok, key=lambda r: r["throughput_rps"]) if ok else None
    return {"throughput_at_p99_rps": best["throughput_rps"] if best else 0.0,
            "best_concurrency": best["concurrency"] if best else None,
            "p99_at_best_ms": best["p99_ms"] if best else None, "levels": levels}


def overhead(server: Server, body_file: Path, duration: float) -> dict[str, Any]:
    wrk(server, body_file, 1, 2)
    r = wrk(server, body_file, 1, duration)
    print(f"   {server.name:<16} no-op c=1 p50 {r['p50_ms']:.3f} ms", flush=True)
    return {"noop_p50_ms": r["p50_ms"], "noop_p99_ms": r["p99_ms"], "noop_run": r}


# -- modelyard ------------------------------------------------------------------------------------
def modelyard_home(home: Path, database_url: str | None, works: dict[str, Workload]) -> str:
    """A data dir with project `bench`, the models registered and pinned deployments; the token."""
    from fastapi.testclient import TestClient

    from modelyard.core.settings import Settings
    from modelyard.server.app import create_app

    settings = Settings(home=home, database_url=database_url, background=False)
    with TestClient(create_app(settings)) as api:
        token = settings.resolved_admin_token_file.read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        api.post("/api/v1/projects", json={"name": "bench"}, headers=auth).raise_for_status()
        registry = api.app.state.platform.registry  # type: ignore[attr-defined]
        for dep, (model, batching) in DEPLOYMENTS.items():
            work = works.get(model)
            if work is None:
                continue
            art = registry.put_artifact("bench", work.model.read_bytes(), name="model.onnx")
            registry.register_version("bench", dep, artifacts={"model.onnx": art.digest},
                                      framework="onnx", preprocessing=work.preprocessing)
            api.post("/api/v1/projects/bench/deployments", headers=auth, json={
                "name": dep, "model_ref": f"{dep}@1", "batching": batching, "pinned": True,
            }).raise_for_status()
    return token


def modelyard_server(home: Path, database_url: str | None, token: str, port: int,
                     deployment: str, work: Path, v2: bool = False) -> Server:
    """`modelyard serve`, driven at the deployment's /predict, or with `v2` its Open Inference
    Protocol infer route."""
    exe = Path(sys.executable).parent / "modelyard"
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    if database_url:
        env["MODELYARD_DATABASE_URL"] = database_url
    headers = {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{port}/api/v1/projects/bench/deployments/{deployment}/predict"
    if v2:
        url = f"http://127.0.0.1:{port}/v2/models/{deployment}/infer"
        headers["X-Modelyard-Project"] = "bench"
    return Server(f"modelyard-{deployment}{'-v2' if v2 else ''}",
                  [str(exe), "serve", "--port", str(port), "--workers", str(peers.WORKERS)],
                  work, env, url, headers)


# -- main -----------------------------------------------------------------------------------------
def run_server(server: Server, work: Workload, duration: float, noop: bool,
               model: str | None = None) -> dict[str, Any]:
    """Start-up, answers checked, then the sweep (or the no-op overhead); for modelyard
    (`model` given) the batch sizes its batcher ran."""
    try:
        started = time.monotonic()
        server.wait_ready(work.body, timeout=240)
        ready_s = round(time.monotonic() - started, 1)
        body_file = server.log.with_suffix(".body.json")
        body_file.write_bytes(work.body)
        if noop:
            return overhead(server, body_file, duration)
        wrong = check_answers(server, work)
        if wrong:
            raise RuntimeError(f"{server.name} gave {wrong} wrong labels of {len(work.want)}")
        probe = BatchProbe(server, model) if model is not None else None
        out = {"ready_s": ready_s, "checked_answers": len(work.want),
               **sweep(server, body_file, duration, probe),
               # a worker that crashed and was restarted shows here (its server log has why)
               "log_tracebacks": server.tail(10**7).count("Traceback (most recent call last)")}
        if probe is not None:
            batches, rows, buckets = probe.read()
            out["batch_sizes_one_worker"] = {
                "batches": int(batches), "mean_rows_per_batch": round(rows / batches, 2)
                if batches else None, "cumulative_batches_by_rows_le": buckets}
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    parser.add_argument("--peers", default=",".join(ALL_PEERS))
    parser.add_argument("--models", default=",".join(ALL_MODELS),
                        help="digits (always), intent, intent-wide (batching gain only)")
    parser.add_argument("--quick", action="store_true", help="2 s levels (a smoke run)")
    parser.add_argument("--database", choices=["both", "postgresql", "sqlite"], default="both",
                        help="modelyard's metadata database: SQLite in the data dir is the "
                             "one-machine default (the headline); replicas on several machines "
                             "share PostgreSQL (measured beside it with 'both')")
    args = parser.parse_args()
    duration = 2.0 if args.quick else args.duration
    chosen = [p for p in args.peers.split(",") if p]
    wanted = {m for m in args.models.split(",") if m} | {"digits"}
    from tests._servers.apt import ensure_binary

    ensure_binary("wrk", "wrk")
    t_start = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="modelyard-serving-bench-")))
        database_url = pg_url = None
        if args.database in ("postgresql", "both"):
            from tests._servers.postgres import postgres_server

            pg_url = stack.enter_context(postgres_server())
        if args.database == "postgresql":
            database_url = pg_url
        works = {"digits": serving_models.digits(tmp)}
        works["noop"] = serving_models.noop(tmp, works["digits"].body)
        if "intent" in wanted:
            works["intent"] = serving_models.intent(tmp)
        if "intent-wide" in wanted:
            works["intent-wide"] = serving_models.intent(tmp, serving_models.WIDE_DIM,
                                                         "intent-wide")

        results: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        home = tmp / "modelyard-home"
        token = modelyard_home(home, database_url, works)
        for dep, key in (("digits", "modelyard"), ("digits-b1", "modelyard_batch1"),
                         ("intent", "modelyard_intent"), ("intent-wide", "modelyard_intent_wide"),
                         ("intent-wide-b1", "modelyard_intent_wide_batch1")):
            work = works.get(DEPLOYMENTS[dep][0])
            if work is None:
                continue
            print(f"== {key}", flush=True)
            results[key] = run_server(
                modelyard_server(home, database_url, token, free_port(), dep, tmp),
                work, duration, noop=False, model=dep)
        results["modelyard"].update(run_server(
            modelyard_server(home, database_url, token, free_port(), "noop", tmp),
            works["noop"], duration, noop=True))
        print("== modelyard_v2", flush=True)  # the same digits deployment, over v2 infer
        results["modelyard_v2"] = run_server(
            modelyard_server(home, database_url, token, free_port(), "digits", tmp, v2=True),
            serving_models.v2_of(works["digits"]), duration, noop=False, model="digits")
        if args.database == "both":  # the same replicas on the shared PostgreSQL
            print("== modelyard_postgresql", flush=True)
            pg_home = tmp / "modelyard-home-pg"
            pg_token = modelyard_home(pg_home, pg_url, {"digits": works["digits"]})
            results["modelyard_postgresql"] = run_server(
                modelyard_server(pg_home, pg_url, pg_token, free_port(), "digits", tmp),
                works["digits"], duration, noop=False, model="digits")

        for peer in chosen:
            print(f"== {peer}", flush=True)
            try:
                python = peers.peer_python(peer)
                result: dict[str, Any] = {}
                for kind in ("digits", "noop", "intent"):
                    if kind not in works:
                        continue
                    work, port = works[kind], free_port()
                    spec = peers.prepare(peer, python, tmp / f"{peer}-{kind}", work.model,
                                         work.preprocessing, port, peers.MAX_BATCH)
                    server = Server(f"{peer}-{kind}", spec.command, tmp / f"{peer}-{kind}",
                                    spec.env, f"http://127.0.0.1:{port}{spec.path}", {})
                    got = run_server(server, work, duration, noop=kind == "noop")
                    if kind == "intent":
                        result["intent"] = got
                    else:
                        result.update(got)
                results[peer] = result
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                skipped[peer] = f"{type(e).__name__}: {e}"[-1500:]
                print(f"   {peer} skipped: {skipped[peer][:300]}", flush=True)
        descriptions = {k: w.description for k, w in works.items()}
    took = round(time.monotonic() - t_start, 1)
    report(results, skipped, duration, took, args.database, descriptions)


def _best(tput: dict[str, float]) -> tuple[str | None, float]:
    best = max(tput, key=tput.__getitem__) if tput else None
    return best, (tput[best] if best else 0.0)


def report(results: dict[str, dict[str, Any]], skipped: dict[str, str], duration: float,
           took: float, database: str, descriptions: dict[str, str]) -> None:
    def tput(r: dict[str, Any] | None) -> float:
        return float(r["throughput_at_p99_rps"]) if r else 0.0

    peer_res = {p: r for p, r in results.items() if not p.startswith("modelyard")}
    ours = tput(results["modelyard"])
    best_peer, best = _best({p: tput(r) for p, r in peer_res.items()})
    ratio = ours / best if best else 0.0
    ours_intent = tput(results.get("modelyard_intent"))
    best_intent_peer, best_intent = _best({p: tput(r.get("intent")) for p, r in peer_res.items()
                                           if r.get("intent")})
    ratio_intent = ours_intent / best_intent if best_intent else None
    on_pg = results.get("modelyard_postgresql", {}).get("throughput_at_p99_rps")
    ratio_pg = on_pg / best if on_pg and best else None
    ratios = [x for x in (ratio, ratio_intent) if x is not None]
    setup = {"models": descriptions,
             "runtime": "onnxruntime 1.32.0, intra_op_num_threads=1, in every server",
             "workers_per_server": peers.WORKERS, "max_batch_size": peers.MAX_BATCH,
             "max_batch_delay_ms": peers.MAX_DELAY_MS, "p99_bound_ms": P99_BOUND_MS,
             "levels": LEVELS, "seconds_per_level": duration,
             "load_generator": "wrk 4.1 (Debian), 1 thread, closed loop, one input per request",
             "modelyard": f"modelyard serve --workers {peers.WORKERS} (granian), pinned "
                          "deployment, POST /predict with a bearer token",
             "modelyard_database": "sqlite (data dir default)" if database == "both"
                                   else database,
             "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
             "total_run_s": took}
    summary = {p: {"throughput_at_p99_rps": r["throughput_at_p99_rps"],
                   "noop_p50_ms": r.get("noop_p50_ms"),
                   "intent_throughput_at_p99_rps": tput(r.get("intent")) or None}
               for p, r in results.items()}
    peers_out: dict[str, Any] = dict(peer_res)
    peers_out.update({p: {"skipped": why} for p, why in skipped.items()})
    write_result(
        name="serving_throughput",
        goal="throughput at p99 <= 50 ms of the digits-cnn and the intent model, modelyard vs "
             "the best of LitServe, Ray Serve, BentoML, TorchServe and plain FastAPI: at least "
             "1.5x for each model (value: the lower of the two ratios)",
        metric="throughput_ratio_vs_best_peer", value=round(min(ratios), 3), target=1.5,
        higher_is_better=True,
        figures={"ratio_by_model": {"digits": round(ratio, 3),
                                    "intent": round(ratio_intent, 3) if ratio_intent else None},
                 "best_peer_by_model": {"digits": best_peer, "intent": best_intent_peer},
                 "modelyard": results["modelyard"],
                 "modelyard_intent": results.get("modelyard_intent"),
                 "summary": summary,
                 "modelyard_postgresql": results.get("modelyard_postgresql"),
                 # no peer here speaks the protocol: v2 beside modelyard's own /predict
                 "modelyard_v2_infer": results.get("modelyard_v2"),
                 "v2_vs_predict_digits": round(tput(results.get("modelyard_v2")) / ours, 3)
                 if ours else None,
                 "ratio_on_postgresql": round(ratio_pg, 3) if ratio_pg else None,
                 "setup": setup},
        peers=peers_out, script=__file__)
    gains: dict[str, float | None] = {}
    for model, batched, single in (("digits", "modelyard", "modelyard_batch1"),
                                   ("intent-wide", "modelyard_intent_wide",
                                    "modelyard_intent_wide_batch1")):
        b1 = tput(results.get(single))
        gains[model] = round(tput(results.get(batched)) / b1, 3) if b1 else None
    headline = gains["intent-wide"] if gains["intent-wide"] is not None else gains["digits"]
    write_result(
        name="serving_batching_gain",
        goal="modelyard throughput at p99 <= 50 ms with dynamic batching vs max batch size 1: "
             "at least 3x. value: the gain on intent-wide, the model whose network time "
             "dominates a request (where batching is what decides throughput); the digits-cnn "
             "gain is beside it in figures.gain_by_model: its network costs tens of µs a row, "
             "so per-request HTTP and JSON work, which batching cannot share, bounds it",
        metric="batching_gain", value=headline or 0.0, target=3.0, higher_is_better=True,
        figures={"gain_by_model": gains,
                 "headline_model": "intent-wide" if gains["intent-wide"] is not None
                 else "digits",
                 "batched": results["modelyard"], "batch_size_1": results["modelyard_batch1"],
                 "intent_wide_batched": results.get("modelyard_intent_wide"),
                 "intent_wide_batch_size_1": results.get("modelyard_intent_wide_batch1"),
                 "setup": setup},
        peers={}, script=__file__)


if __name__ == "__main__":
    main()
