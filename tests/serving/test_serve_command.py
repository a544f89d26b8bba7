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
def _serve(home: Path, http_server: str) -> Iterator[str]:
    port = _free_port()
    exe = Path(sys.executable).parent / "modelyard"
    env = {**os.environ, "MODELYARD_HOME": str(home)}
    env.pop("MODELYARD_URL", None)
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--http-server", http_server],
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
