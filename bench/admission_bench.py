"""Where the API's admission limit should sit: throughput and latency against requests in flight.

A real server process (uvicorn, SQLite) with no admission limit is driven by a closed loop of
`c` clients on the mixed workload of tests/reliability/test_overload.py (a list read, or a
20-event metric batch); for each `c` the rate it completes and its latency are recorded. The
rate stops growing once a few requests are in flight (one process, one GIL, one SQLite
writer); past that, every request more in flight only waits, so a limit of L in flight bounds
an admitted request's wait to about L / rate. Then the server is started with the default
limit set to a few values and offered twice the best measured rate by an open loop: what it sheds and how long the
admitted requests take.

    python -m bench.admission_bench [--seconds 3]

`value`: the smallest concurrency reaching 90 % of the best rate (the default
`api.max_in_flight` must be well above it, so that the limit never costs throughput).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench._harness import ROOT, percentile, write_result
from modelyard.core.settings import ApiSettings

P = "/api/v1/projects/alpha"
MAIN = """
import sys, uvicorn
from modelyard.core.settings import Settings
from modelyard.server.app import create_app
port = int(sys.argv[2])
settings = Settings(home=sys.argv[1], port=port, background=False)
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, home: Path, max_in_flight: int | None) -> None:
        self.port = _port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if max_in_flight is not None:
            env["MODELYARD_API__MAX_IN_FLIGHT"] = str(max_in_flight)
        self.proc = subprocess.Popen([sys.executable, "-c", MAIN, str(home), str(self.port)],
                                     cwd=ROOT, env=env, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        self.token = (home / "admin-token").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class Mix:
    def __init__(self, server: Server) -> None:
        self.server, self.lock, self.local = server, threading.Lock(), threading.local()
        self.n = 0
        self.codes: Counter[int] = Counter()
        self.latency: dict[int, list[float]] = {}

    def one(self) -> None:
        with self.lock:
            self.n += 1
            i = self.n
        c = getattr(self.local, "c", None) or self._new_client()
        t0 = time.perf_counter()
        if i % 2:
            r = c.get(f"{P}/runs", params={"limit": 20})
        else:
            r = c.post(f"{P}/metrics/events", json={"events": [
                {"deployment": "d", "model": "m", "version": 1, "time": "2024-06-01T12:00:00",
                 "latency_ms": 1.0, "request_id": f"r{i}-{k}"} for k in range(20)]})
        dt = time.perf_counter() - t0
        with self.lock:
            self.codes[r.status_code] += 1
            self.latency.setdefault(r.status_code, []).append(dt)

    def _new_client(self) -> httpx.Client:
        self.local.c = self.server.client()
        return self.local.c  # type: ignore[no-any-return]


def closed_loop(server: Server, clients: int, seconds: float) -> dict[str, float]:
    mix = Mix(server)
    end = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < end:
            mix.one()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = [x for v in mix.latency.values() for x in v]
    return {"clients": clients, "rps": round(mix.n / seconds, 1),
            "p50_ms": round(1000 * percentile(lat, 50), 1),
            "p99_ms": round(1000 * percentile(lat, 99), 1)}


def open_loop(server: Server, rate: float, seconds: float) -> dict[str, Any]:
    mix = Mix(server)
    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=96) as pool:
        start = time.monotonic()
        for k in range(total):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(mix.one)
    admitted = [x for code, v in mix.latency.items() if code < 300 for x in v]
    return {"offered_rps": round(rate, 1), "requests": total,
            "codes": {str(k): v for k, v in sorted(mix.codes.items())},
            "admitted_p50_ms": round(1000 * percentile(admitted, 50), 1),
            "admitted_p99_ms": round(1000 * percentile(admitted, 99), 1)}


def _seed(server: Server) -> None:
    with server.client() as c:
        c.post("/api/v1/projects", json={"name": "alpha"}).raise_for_status()
        for k in range(20):
            c.post(f"{P}/runs", json={"experiment": "e", "params": {"k": k}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--limits", type=lambda t: [int(x) for x in t.split(",")],
                        default=[4, 8, 16, 32], help="max_in_flight values to offer 2x to")
    args = parser.parse_args()
    levels = (1, 2, 4, 8, 16, 32, 64)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "unlimited", max_in_flight=0)
        try:
            _seed(server)
            closed_loop(server, 4, 1.0)  # warm-up
            curve = [closed_loop(server, c, args.seconds) for c in levels]
            print(curve)
            best = max(p["rps"] for p in curve)
            unlimited = open_loop(server, 2 * best, args.seconds)
        finally:
            server.stop()
        limited = {}
        for limit in args.limits:
            server = Server(Path(tmp) / f"limit-{limit}", max_in_flight=limit)
            try:
                _seed(server)
                closed_loop(server, 4, 1.0)
                limited[str(limit)] = open_loop(server, 2 * best, args.seconds)
                print(limit, limited[str(limit)])
            finally:
                server.stop()
    saturating = min(p["clients"] for p in curve if p["rps"] >= 0.9 * best)
    defaults = ApiSettings()
    write_result(
        name="api_admission",
        goal="the default api.max_in_flight is well above the concurrency that saturates one "
             "process, and at 2x capacity it sheds instead of queueing",
        metric="saturating_concurrency", value=saturating,
        target=defaults.max_in_flight, higher_is_better=False,
        figures={"closed_loop": curve, "best_rps": best,
                 "open_loop_2x_unlimited": unlimited,
                 "open_loop_2x_by_max_in_flight": limited,
                 "default_max_in_flight": defaults.max_in_flight,
                 "default_queue_wait_s": defaults.queue_wait_s,
                 "seconds_per_point": args.seconds, "loadavg_before": os.getloadavg()[0]},
        peers={}, script=__file__)


if __name__ == "__main__":
    main()
