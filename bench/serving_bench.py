"""Model serving: modelyard vs LitServe, Ray Serve, BentoML, TorchServe and plain FastAPI.

Every server serves the same digits-cnn ONNX model (the builtin trainer's network, trained a
few epochs here) through ONNX Runtime with one intra-op thread, in its own venv, with
`WORKERS` worker processes / replicas and its own dynamic batching (max batch 32, 2 ms), and
answers the same request: one raw 8x8 image as JSON. modelyard runs as a user deploys it for
serving: `modelyard serve --workers 2` (a replica on the main server's database), the
deployment pinned, the request through `/predict` with a bearer token. The headline uses the
one-machine default, SQLite in the data dir; the same replicas on a shared PostgreSQL (where
each replica's prediction events go to the server through that database) are measured in the
same run and reported beside it (`figures.modelyard_postgresql`, `ratio_on_postgresql`).

One load generator drives them all: `wrk` (C, one thread, closed loop) with a fixed POST body.
Concurrency is swept upward; per server the result is the highest throughput (answered 2xx per
second) whose p99 is at most 50 ms, and the p50 at concurrency 1 of a no-op model (Flatten +
Slice: no arithmetic) is the per-request overhead. Before any load, each server's answers to
64 test images are checked against ONNX Runtime run here.

Results: `serving_throughput.json` (modelyard / best peer at p99 <= 50 ms; goal >= 1.5) and
`serving_batching_gain.json` (modelyard with batching / max batch size 1; goal >= 3).

    python -m bench.serving_bench [--duration 5] [--peers fastapi,litserve,...] [--quick]
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

import numpy as np

from bench import serving_peers as peers
from bench._harness import write_result

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "serving_wrk.lua"
P99_BOUND_MS = 50.0
LEVELS = [1, 2, 4, 8, 16, 32, 64, 128]
MIN_LEVEL = 16
ALL_PEERS = ["fastapi", "litserve", "ray_serve", "bentoml", "torchserve"]
LABELS = [str(d) for d in range(10)]
PREPROCESSING = {"kind": "image", "height": 8, "width": 8, "scale": 1 / 255, "labels": LABELS}


# -- models ---------------------------------------------------------------------------------------
def digits_cnn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train the builtin digits-cnn network briefly and export it; returns test pixels, labels."""
    import torch
    from sklearn.datasets import load_digits

    from modelyard.runtime._model import export_onnx
    from modelyard.training.builtin.digits_cnn import network

    d = load_digits()
    pixels = (d.images * 15).astype(np.float32)  # 0..240, as a camera-like raw input
    x = torch.from_numpy(pixels[:1400, None] / 255)
    y = torch.from_numpy(d.target[:1400]).long()
    torch.manual_seed(0)
    net = network(16, 10)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(5):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    export_onnx(net.eval(), x[:2], path)
    return pixels[1400:], d.target[1400:]


def noop_model(path: Path) -> None:
    """input (N, 1, 8, 8) -> the first 10 pixels as `logits`: no arithmetic at all."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    consts = [numpy_helper.from_array(np.array(v, dtype=np.int64), n)
              for n, v in (("start", [0]), ("end", [10]), ("axis", [1]))]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Slice", ["flat", "start", "end", "axis"], ["logits"])],
        "noop",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def reference_labels(model: Path, pixels: np.ndarray) -> list[str]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": pixels[:, None].astype(np.float32) / 255})[0]
    return [str(int(i)) for i in logits.argmax(axis=1)]


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


def predictions(answer: Any) -> list[dict[str, Any]]:
    return answer if isinstance(answer, list) else answer["predictions"]


def check_answers(server: Server, pixels: np.ndarray, want: list[str]) -> int:
    """Sends each test image alone; returns how many labels differ from ONNX Runtime's."""
    wrong = 0
    for img, label in zip(pixels, want, strict=True):
        got = predictions(server.post(json.dumps({"inputs": [img.tolist()]}).encode()))
        wrong += got[0]["label"] != label
    return wrong


# -- load -----------------------------------------------------------------------------------------
def wrk(server: Server, body_file: Path, concurrency: int, duration: float) -> dict[str, Any]:
    env = {**os.environ, "WRK_BODY": str(body_file),
           "WRK_AUTH": server.headers.get("Authorization", "")}
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


def sweep(server: Server, body_file: Path, duration: float) -> dict[str, Any]:
    """Closed-loop levels upward until p99 passes the bound at two levels in a row (never
    before `MIN_LEVEL`, so one stall of a busy machine does not end a sweep); the best level
    within the bound."""
    wrk(server, body_file, 8, 2)  # warm-up: JIT, pools, connections
    levels: list[dict[str, Any]] = []
    over = 0
    for c in LEVELS:
        r = wrk(server, body_file, c, duration)
        levels.append(r)
        print(f"   {server.name:<16} c={c:<4} {r['throughput_rps']:>8.0f} rps  "
              f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}",
              flush=True)
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
def modelyard_home(home: Path, database_url: str | None, models: dict[str, Path]) -> str:
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
        for name, path in models.items():
            art = registry.put_artifact("bench", path.read_bytes(), name="model.onnx")
            registry.register_version("bench", name, artifacts={"model.onnx": art.digest},
                                      framework="onnx", preprocessing=PREPROCESSING)
        for dep, ref, batching in (("digits", "digits@1", {}), ("noop", "noop@1", {}),
                                   ("digits-b1", "digits@1", {"max_batch_size": 1})):
            api.post("/api/v1/projects/bench/deployments", headers=auth, json={
                "name": dep, "model_ref": ref, "batching": batching, "pinned": True,
            }).raise_for_status()
    return token


def modelyard_server(home: Path, database_url: str | None, token: str, port: int,
                     deployment: str, work: Path) -> Server:
    exe = Path(sys.executable).parent / "modelyard"
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    if database_url:
        env["MODELYARD_DATABASE_URL"] = database_url
    return Server(f"modelyard-{deployment}",
                  [str(exe), "serve", "--port", str(port), "--workers", str(peers.WORKERS)],
                  work, env,
                  f"http://127.0.0.1:{port}/api/v1/projects/bench/deployments/{deployment}/predict",
                  {"Authorization": f"Bearer {token}"})


# -- main -----------------------------------------------------------------------------------------
def run_server(server: Server, body: bytes, body_file: Path, pixels: np.ndarray,
               want: list[str] | None, duration: float, noop: bool) -> dict[str, Any]:
    try:
        started = time.monotonic()
        server.wait_ready(body, timeout=240)
        ready_s = round(time.monotonic() - started, 1)
        if noop:
            return overhead(server, body_file, duration)
        wrong = check_answers(server, pixels, want or [])
        if wrong:
            raise RuntimeError(f"{server.name} gave {wrong} wrong labels of {len(pixels)}")
        return {"ready_s": ready_s, "checked_answers": len(pixels),
                **sweep(server, body_file, duration),
                # a worker that crashed and was restarted shows here (its server log has why)
                "log_tracebacks": server.tail(10**7).count("Traceback (most recent call last)")}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    parser.add_argument("--peers", default=",".join(ALL_PEERS))
    parser.add_argument("--quick", action="store_true", help="2 s levels (a smoke run)")
    parser.add_argument("--database", choices=["both", "postgresql", "sqlite"], default="both",
                        help="modelyard's metadata database: SQLite in the data dir is the "
                             "one-machine default (the headline); replicas on several machines "
                             "share PostgreSQL (measured beside it with 'both')")
    args = parser.parse_args()
    duration = 2.0 if args.quick else args.duration
    chosen = [p for p in args.peers.split(",") if p]
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
        models = {"digits": tmp / "digits.onnx", "noop": tmp / "noop.onnx"}
        pixels, _ = digits_cnn(models["digits"])
        noop_model(models["noop"])
        check = pixels[:64]
        want = reference_labels(models["digits"], check)
        body = json.dumps({"inputs": [pixels[0].tolist()]}).encode()
        body_file = tmp / "body.json"
        body_file.write_bytes(body)

        results: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        home = tmp / "modelyard-home"
        token = modelyard_home(home, database_url, models)
        for dep, key in (("digits", "modelyard"), ("digits-b1", "modelyard_batch1")):
            print(f"== {key}", flush=True)
            results[key] = run_server(
                modelyard_server(home, database_url, token, free_port(), dep, tmp),
                body, body_file, check, want, duration, noop=False)
        results["modelyard"].update(run_server(
            modelyard_server(home, database_url, token, free_port(), "noop", tmp), body,
            body_file, check, None, duration, noop=True))
        if args.database == "both":  # the same replicas on the shared PostgreSQL
            print("== modelyard_postgresql", flush=True)
            pg_home = tmp / "modelyard-home-pg"
            pg_token = modelyard_home(pg_home, pg_url, models)
            results["modelyard_postgresql"] = run_server(
                modelyard_server(pg_home, pg_url, pg_token, free_port(), "digits", tmp),
                body, body_file, check, want, duration, noop=False)

        for peer in chosen:
            print(f"== {peer}", flush=True)
            try:
                python = peers.peer_python(peer)
                result: dict[str, Any] = {}
                for kind in ("digits", "noop"):
                    work = tmp / f"{peer}-{kind}"
                    port = free_port()
                    spec = peers.prepare(peer, python, work, models[kind], port, peers.MAX_BATCH)
                    server = Server(f"{peer}-{kind}", spec.command, work, spec.env,
                                    f"http://127.0.0.1:{port}{spec.path}", {})
                    result.update(run_server(server, body, body_file, check, want, duration,
                                             noop=kind == "noop"))
                results[peer] = result
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                skipped[peer] = f"{type(e).__name__}: {e}"[-1500:]
                print(f"   {peer} skipped: {skipped[peer][:300]}", flush=True)
    took = round(time.monotonic() - t_start, 1)
    report(results, skipped, duration, took, args.database)


def report(results: dict[str, dict[str, Any]], skipped: dict[str, str], duration: float,
           took: float, database: str) -> None:
    ours = results["modelyard"]["throughput_at_p99_rps"]
    batch1 = results["modelyard_batch1"]["throughput_at_p99_rps"]
    peer_tput = {p: r["throughput_at_p99_rps"] for p, r in results.items()
                 if not p.startswith("modelyard")}
    best_peer = max(peer_tput, key=peer_tput.__getitem__) if peer_tput else None
    ratio = ours / peer_tput[best_peer] if best_peer and peer_tput[best_peer] else 0.0
    on_pg = results.get("modelyard_postgresql", {}).get("throughput_at_p99_rps")
    ratio_pg = on_pg / peer_tput[best_peer] if on_pg and best_peer and peer_tput[best_peer] \
        else None
    setup = {"model": "digits-cnn (builtin network, 16 channels) as ONNX; no-op: Flatten+Slice",
             "runtime": "onnxruntime 1.32.0, intra_op_num_threads=1, in every server",
             "workers_per_server": peers.WORKERS, "max_batch_size": peers.MAX_BATCH,
             "max_batch_delay_ms": peers.MAX_DELAY_MS, "p99_bound_ms": P99_BOUND_MS,
             "levels": LEVELS, "seconds_per_level": duration,
             "load_generator": "wrk 4.1 (Debian), 1 thread, closed loop, one image per request",
             "modelyard": f"modelyard serve --workers {peers.WORKERS}, pinned deployment, "
                          "POST /predict with a bearer token",
             "modelyard_database": "sqlite (data dir default)" if database == "both"
                                   else database,
             "total_run_s": took}
    summary = {p: {"throughput_at_p99_rps": r["throughput_at_p99_rps"],
                   "noop_p50_ms": r.get("noop_p50_ms")} for p, r in results.items()}
    peers_out: dict[str, Any] = {p: r for p, r in results.items() if not p.startswith("modelyard")}
    peers_out.update({p: {"skipped": why} for p, why in skipped.items()})
    write_result(
        name="serving_throughput",
        goal="digits-cnn throughput at p99 <= 50 ms, modelyard vs the best of LitServe, Ray "
             "Serve, BentoML, TorchServe and plain FastAPI: at least 1.5x",
        metric="throughput_ratio_vs_best_peer", value=round(ratio, 3), target=1.5,
        higher_is_better=True,
        figures={"modelyard": results["modelyard"], "summary": summary, "best_peer": best_peer,
                 "modelyard_postgresql": results.get("modelyard_postgresql"),
                 "ratio_on_postgresql": round(ratio_pg, 3) if ratio_pg else None,
                 "setup": setup},
        peers=peers_out, script=__file__)
    write_result(
        name="serving_batching_gain",
        goal="modelyard throughput at p99 <= 50 ms with dynamic batching vs max batch size 1: "
             "at least 3x",
        metric="batching_gain", value=round(ours / batch1, 3) if batch1 else 0.0, target=3.0,
        higher_is_better=True,
        figures={"batched": results["modelyard"], "batch_size_1": results["modelyard_batch1"],
                 "setup": setup},
        peers={}, script=__file__)


if __name__ == "__main__":
    main()
