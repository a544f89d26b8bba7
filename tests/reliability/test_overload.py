"""The API at twice its capacity sheds load cleanly and serves normally right after.

Capacity is measured first (a closed loop of a few clients on a mixed read/write workload);
then twice that rate is offered for a few seconds by an open loop (requests sent on a fixed
schedule whatever the answers), to a server with the default admission limit
(`api.max_in_flight`, server/admission.py). Every request must get an answer that is a success
or a 429 (never a 5xx, never a dropped connection), some must be shed, the server must stay up,
every acknowledged write must be stored and no refused one, and the first requests after the
burst must succeed. The latency of admitted requests is recorded (not asserted). Serving's own
overload (a full batch queue answers 429 with Retry-After) is tested in
tests/serving/test_release.py; the limiter alone in tests/server/test_admission.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bench._harness import percentile
from modelyard.core.settings import ApiSettings
from tests.reliability._proc import ServerProcess, server_process
from tests.reliability.conftest import Summary

pytestmark = pytest.mark.integration

P = "/api/v1/projects/alpha"
AT = datetime(2024, 6, 1, 12, 0, 0)
BATCH = 20


class Load:
    """One request of the mix: a list read, or a small metric batch (an acknowledged write)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.codes: Counter[str] = Counter()
        self.latencies: list[float] = []  # of admitted (2xx) requests
        self.shed_latencies: list[float] = []
        self.retry_after: set[str] = set()
        self.acked_events = 0
        self.n = 0
        self.local = threading.local()

    def _client(self) -> httpx.Client:
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = self.server.client(timeout=30)
        return c

    def one(self) -> None:
        with self.lock:
            self.n += 1
            i = self.n
        c = self._client()
        start = time.perf_counter()
        try:
            if i % 2:
                r = c.get(f"{P}/runs", params={"limit": 20})
            else:
                r = c.post(f"{P}/metrics/events", json={"events": [
                    {"deployment": "d", "model": "m", "version": 1, "time": AT.isoformat(),
                     "latency_ms": 1.0, "request_id": f"r{i}-{k}"} for k in range(BATCH)]})
            code = str(r.status_code)
            if r.status_code == 429 and not _shed_properly(r):
                code = "429 without the error shape or Retry-After"
        except httpx.HTTPError as e:
            code, r = type(e).__name__, None
        took = time.perf_counter() - start
        with self.lock:
            self.codes[code] += 1
            if r is not None and r.status_code < 300:
                self.latencies.append(took)
            elif r is not None and r.status_code == 429:
                self.shed_latencies.append(took)
                self.retry_after.add(r.headers.get("retry-after", ""))
            if r is not None and r.status_code == 201:
                self.acked_events += BATCH


def _shed_properly(r: httpx.Response) -> bool:
    try:
        code = r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code == "resource_exhausted" and r.headers.get("retry-after", "").isdigit()


def _closed_loop(load: Load, clients: int, seconds: float) -> float:
    """Requests per second the server completes with `clients` always waiting on it."""
    end = time.monotonic() + seconds
    before = load.n

    def worker() -> None:
        while time.monotonic() < end:
            load.one()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (load.n - before) / seconds


def _open_loop(load: Load, rate: float, seconds: float, max_requests: int) -> int:
    """Sends `rate` requests per second on a fixed schedule, whether or not answers came."""
    total = min(int(rate * seconds), max_requests)
    with ThreadPoolExecutor(max_workers=64) as pool:
        start = time.monotonic()
        for k in range(total):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(load.one)
    return total


def test_api_at_twice_capacity_sheds_cleanly_and_recovers(tmp_path: Path,
                                                           summary: Summary) -> None:
    with server_process(tmp_path / "home") as server:
        with server.client() as c:
            assert c.post("/api/v1/projects", json={"name": "alpha"}).status_code == 201
            for k in range(20):
                c.post(f"{P}/runs", json={"experiment": "e", "params": {"k": k}})

        warm = Load(server)
        capacity = _closed_loop(warm, clients=4, seconds=3)
        assert capacity > 0

        burst = Load(server)
        offered = _open_loop(burst, rate=2 * capacity, seconds=4, max_requests=3000)
        assert server.alive()

        after = Load(server)
        for _ in range(20):
            after.one()

        with server.client() as c:
            r = c.get(f"{P}/metrics/query", params={
                "metric": "count", "start": (AT - timedelta(hours=1)).isoformat(),
                "end": (AT + timedelta(hours=1)).isoformat(), "step_s": 7200})
            assert r.status_code == 200, r.text
            stored = int(sum(p["value"] or 0 for s in r.json()["series"] for p in s["points"]))
        log = server.log.read_text(errors="replace")

    acked = warm.acked_events + burst.acked_events + after.acked_events
    bad = {k: v for k, v in burst.codes.items() if k not in ("200", "201", "429")}
    limits = ApiSettings()
    summary.add("overload", max_in_flight=limits.max_in_flight,
                queue_wait_s=limits.queue_wait_s, api_capacity_rps=round(capacity, 1),
                offered_rps=round(2 * capacity, 1), requests_offered=offered,
                requests_answered=sum(burst.codes.values()), requests_shed=burst.codes["429"],
                requests_failed=sum(bad.values()), server_errors=sum(
                    v for k, v in burst.codes.items() if k.isdigit() and int(k) >= 500),
                lost=max(0, acked - stored),
                admitted_latency_p50_ms=round(1000 * percentile(burst.latencies, 50), 1),
                admitted_latency_p99_ms=round(1000 * percentile(burst.latencies, 99), 1),
                shed_latency_p50_ms=round(1000 * percentile(burst.shed_latencies, 50), 1)
                if burst.shed_latencies else None,
                recovery_requests_ok=after.codes["200"] + after.codes["201"],
                loadavg_1m=round(os.getloadavg()[0], 2))
    assert sum(burst.codes.values()) == offered  # every request got an answer
    assert bad == {}, burst.codes  # successes or 429 only: no 5xx, no dropped connection
    assert burst.codes["429"] > 0, burst.codes  # it shed, rather than queue everything
    assert burst.retry_after == {str(limits.retry_after_s)}  # and said when to come back
    assert set(after.codes) <= {"200", "201"}, after.codes  # serves normally right after
    assert stored == acked  # every acknowledged write is stored, and no refused one
    assert "Traceback" not in log
