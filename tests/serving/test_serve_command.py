"""`modelyard serve` as a user runs it: a replica process on the data dir answers predictions
through either HTTP server, checks tokens and inputs, and counts requests in /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from tests.conftest import Team, bearer
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(home: Path, http_server: str, workers: int = 1) -> Iterator[str]:
    port = _free_port()
    exe = Path(sys.executable).parent / "modelyard"
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--http-server", http_server,
                             "--workers", str(workers)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "modelyard serve did not come up in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)


@pytest.mark.parametrize("http_server", ["granian", "uvicorn"])
def test_modelyard_serve_answers_like_the_app(http_server: str, settings: Settings,
                                              api: TestClient, team: Team,
                                              digits_model: DigitsModel) -> None:
    api.post("/api/v1/projects/alpha/deployments", headers=bearer(team.editor),
             json={"name": "digits", "model_ref": "digits@production"}).raise_for_status()
    pixels = digits().test_x[:4]
    want = expected_labels(digits_model.c1, pixels)
    predict = "/api/v1/projects/alpha/deployments/digits/predict"
    with _serve(settings.home, http_server) as url, httpx.Client(base_url=url) as c:
        # the second and third requests take the fast path (the token is remembered by then)
        for _ in range(3):
            r = c.post(predict, json={"inputs": pixels.tolist()}, headers=bearer(team.viewer))
            assert r.status_code == 200, r.text
            assert [p["label"] for p in r.json()["predictions"]] == want
        bad = c.post(predict, json={"inputs": [[1, 2, 3]]}, headers=bearer(team.viewer))
        assert bad.status_code == 400 and "input" in bad.json()["error"]["message"]
        nobody = c.post(predict, json={"inputs": pixels.tolist()})
        assert nobody.status_code == 401 and nobody.json()["error"]["code"]
        outsider = c.post(predict, json={"inputs": pixels.tolist()},
                          headers=bearer(team.outsider))
        assert outsider.status_code == 404
        ready = c.get("/v2/models/digits/ready",
                      headers={**bearer(team.viewer), "X-Modelyard-Project": "alpha"})
        assert ready.status_code == 200
        metrics = c.get("/metrics").text
    ok = [line for line in metrics.splitlines()
          if line.startswith("modelyard_serving_requests_total{") and 'outcome="ok"' in line]
    assert ok and float(ok[0].rsplit(" ", 1)[1]) == 3.0, ok


def _listeners(port: int) -> int:
    """How many sockets listen on `port` (Linux)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for f in (line.split() for line in lines)
               if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A")


def _holders(port: int, client_ports: set[int]) -> set[int]:
    """The processes holding the server side of the connections from `client_ports` (Linux)."""
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
        if local == port and remote in client_ports:
            sockets.add(f"socket:[{fields[9]}]")
    holders = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in sockets for fd in (proc / "fd").iterdir()):
                holders.add(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return holders


@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads connections on Linux")
def test_workers_share_a_burst_of_connections(settings: Settings, api: TestClient) -> None:
    """16 connections opened at once (a benchmark's clients, a load balancer's pool) are spread
    over both workers. Granian's own workers share one listening socket, and whichever wakes
    first accepts them all; each of ours has its own (the odds of 16 landing on one of two at
    random are 1 in 32,768)."""
    with _serve(settings.home, "granian", workers=2) as url:
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while _listeners(port) < 2:  # the second worker may still be starting
            assert time.monotonic() < deadline, "the second worker did not listen in 60 s"
            time.sleep(0.2)
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            for c in conns:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for c in conns:
                assert c.recv(4096).startswith(b"HTTP/1.1 200")
            holders = _holders(port, {c.getsockname()[1] for c in conns})
        finally:
            for c in conns:
                c.close()
    assert len(holders) == 2
