"""Releases: alias moves under load, backpressure, canary rollback and shadow traffic."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import ModelyardError
from modelyard.core.ids import utcnow
from modelyard.core.settings import ServingSettings, Settings
from modelyard.sdk.client import Client
from modelyard.serving.service import ServingService
from tests._servers.live import live_server
from tests.serving._digits import digits, expected_labels, onnx_model, register
from tests.serving.conftest import DigitsModel

RSS_MARGIN = 96 << 20  # what a server may grow by under overload beyond its warm size


@pytest.fixture
def live(settings: Settings, api: TestClient, client: Client) -> Iterator[Settings]:
    """A real HTTP server on the same data dir as `api` (where the test registers models)."""
    with live_server(settings) as s:
        yield s


def _predict(http: httpx.Client, token: str, name: str, rows: list[list[list[float]]]) -> \
        httpx.Response:
    return http.post(f"/api/v1/projects/alpha/deployments/{name}/predict",
                     json={"inputs": rows}, headers={"Authorization": f"Bearer {token}"})


def _rss_bytes() -> int:
    """Resident memory of this process (Linux /proc), where the live server runs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_overload_is_shed_with_429_and_every_admitted_request_is_right(
        live: Settings, client: Client, admin_token: str, digits_model: DigitsModel) -> None:
    """A closed loop of many more clients than the deployment can hold in flight, while the
    resident memory of the process serving it is sampled."""
    client.serving.create("tiny", "digits@production", warm=True,
                          batching={"max_queue": 2, "max_batch_size": 2,
                                    "max_batch_delay_ms": 20})
    pixels = digits().test_x[:24]
    want = expected_labels(digits_model.c1, pixels)
    bad: list[str] = []
    codes: list[int] = []
    rss: list[int] = []

    url = live.resolved_public_url

    def loop(i: int, rounds: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(rounds):
                r = _predict(http, admin_token, "tiny", [pixels[i].tolist()])
                codes.append(r.status_code)
                if r.status_code == 429:
                    if r.headers.get("Retry-After") != "1" or \
                            r.json()["error"]["code"] != "resource_exhausted":
                        bad.append(r.text)
                elif r.status_code != 200 or \
                        r.json()["predictions"][0]["label"] != want[i]:
                    bad.append(f"{r.status_code} {r.text}")

    for i in range(3):  # warm-up: model, pools, connections, caches
        loop(i, 20)
    warm = _rss_bytes()
    codes.clear()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            rss.append(_rss_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(24) as pool:
            list(pool.map(loop, range(24), [25] * 24))
    finally:
        done.set()
        sampler.join()
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/v2/health/ready").status_code == 200
        assert _predict(http, admin_token, "tiny", [pixels[0].tolist()]).status_code == 200
        metrics = http.get("/metrics").text
    assert bad == []
    assert 429 in codes and 200 in codes
    # Shedding keeps memory flat: queues and buffers are bounded, so 600 requests at many times
    # the capacity leave the process within a fixed margin of its warm size.
    assert rss, "no memory sample was taken"
    assert max(rss) <= warm + RSS_MARGIN, (warm, max(rss))
    assert 'modelyard_serving_queue_depth{model="digits",project="alpha",version="1"} 0.0' \
        in metrics


def test_moving_the_alias_under_load_fails_no_request(
        settings: Settings, api: TestClient, client: Client, admin_token: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(ServingService, "alias_ttl_s", 0.2)
    caplog.set_level(logging.INFO, "modelyard.serving")
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    # big enough that the cache (budget 2 MB) holds one version at a time: each load of one
    # evicts the other while requests are still queued on it
    v1 = register(registry, "alpha", "big", onnx_model(1.0, pad_bytes=400_000))
    v2 = register(registry, "alpha", "big", onnx_model(0.01, pad_bytes=400_000))
    registry.set_alias("alpha", "big", "production", v1)
    client.serving.create("big", "big@production",
                          batching={"max_batch_size": 8, "max_batch_delay_ms": 2})
    small = settings.model_copy(update={"serving": ServingSettings(memory_budget_mb=2)})
    with live_server(small) as live:
        failures, seen = _load_while_moving(live, registry, admin_token, v1, v2)
    assert failures == []
    assert {v1, v2} <= set(seen)
    assert "evicted alpha/big@" in caplog.text  # versions were unloaded under load


def _load_while_moving(live: Settings, registry: Any, token: str, v1: int, v2: int) -> \
        tuple[list[str], list[int]]:
    pixels = digits().test_x[:8]
    want = {v1: expected_labels(1.0, pixels), v2: expected_labels(0.01, pixels)}
    failures: list[str] = []
    seen: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=live.resolved_public_url, timeout=30) as http:
            while not stop.is_set():
                r = _predict(http, token, "big", pixels.tolist())
                with lock:
                    if r.status_code != 200:
                        failures.append(r.text)
                        continue
                    body = r.json()
                    seen.append(body["model_version"])
                    if [p["label"] for p in body["predictions"]] != want[body["model_version"]]:
                        failures.append(f"wrong labels from version {body['model_version']}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: len(seen) >= 20)
        registry.set_alias("alpha", "big", "production", v2)
        _wait(lambda: seen[-10:] == [v2] * 10 and len(seen) > 40)
        registry.set_alias("alpha", "big", "production", v1)
        _wait(lambda: seen[-10:] == [v1] * 10)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return failures, seen


def test_canary_worse_than_the_rule_is_rolled_back(api: TestClient, client: Client,
                                                   digits_model: DigitsModel) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    broken = register(platform.registry, "alpha", "digits", b"this is not an onnx model")
    client.serving.create("digits", "digits@production",
                          traffic={str(digits_model.v1): 50, str(broken): 50},
                          rollback={"max_error_rate": 0.2, "window_s": 600, "min_requests": 3})
    row = [digits().test_x[0].tolist()]
    errors = ok = 0
    for _ in range(30):
        try:
            client.serving.predict("digits", row)
            ok += 1
        except ModelyardError:
            errors += 1
    assert errors > 3 and ok > 3
    assert platform.serving.check_rollbacks() != []
    dep = client.serving.get("digits")
    assert dep["traffic"] == {str(digits_model.v1): 100}
    event = client.serving.events("digits")[0]
    assert event["kind"] == "rollback" and f"canary version {broken}" in event["message"]
    for _ in range(10):
        assert client.serving.predict("digits", row)["model_version"] == digits_model.v1
    assert platform.serving.check_rollbacks() == []


def test_a_healthy_canary_is_kept(api: TestClient, client: Client,
                                  digits_model: DigitsModel) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    client.serving.create("digits", "digits@production", traffic={"1": 50, "2": 50},
                          rollback={"max_error_rate": 0.2, "min_requests": 3})
    for _ in range(20):
        client.serving.predict("digits", [digits().test_x[0].tolist()])
    assert platform.serving.check_rollbacks() == []
    assert client.serving.get("digits")["traffic"] == {"1": 50, "2": 50}


def test_shadow_version_gets_copies_without_changing_answers(
        api: TestClient, client: Client, admin_token: str, digits_model: DigitsModel) -> None:
    client.serving.create("digits", "digits@production", shadow_version=digits_model.v2)
    pixels = digits().test_x[:6]
    for _ in range(5):
        out = client.serving.predict("digits", pixels.tolist())
        assert out["model_version"] == digits_model.v1
        assert [p["label"] for p in out["predictions"]] == expected_labels(digits_model.c1,
                                                                           pixels)
    now = utcnow()

    def counts(include_shadow: bool) -> dict[str, float]:
        out = client.metrics.query("count", now - timedelta(minutes=5), now + timedelta(minutes=1),
                                   step_s=360, group_by="version", deployment="digits",
                                   include_shadow=include_shadow)
        return {s["group"]["version"]: s["points"][0]["value"] for s in out["series"]}

    x = (pixels[:2] / 255).astype("float32").reshape(2, 1, 8, 8)
    r = api.post("/v2/models/digits/infer",
                 headers={"Authorization": f"Bearer {admin_token}", "X-Modelyard-Project": "alpha"},
                 json={"inputs": [{"name": "input", "shape": [2, 1, 8, 8], "datatype": "FP32",
                                   "data": x.reshape(-1).tolist()}]})
    assert r.status_code == 200 and r.json()["model_version"] == str(digits_model.v1)
    _wait(lambda: counts(True).get(str(digits_model.v2)) == 32)
    assert counts(True) == {str(digits_model.v1): 32, str(digits_model.v2): 32}
    assert counts(False) == {str(digits_model.v1): 32}


def _wait(cond: object, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_a_canary_slower_than_the_p95_rule_is_rolled_back(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    from modelyard.metrics.models import PredictionEvent

    platform = api.app.state.platform  # type: ignore[attr-defined]
    client.serving.create("digits", "digits@production", traffic={"1": 80, "2": 20},
                          rollback={"max_p95_ms": 250, "window_s": 300, "min_requests": 10})
    now = utcnow()

    def events(version: int, latency_ms: float, n: int) -> list[PredictionEvent]:
        return [PredictionEvent(project="alpha", deployment="digits", model="digits",
                                version=version, time=now - timedelta(seconds=i),
                                latency_ms=latency_ms, request_id=f"r{version}-{i}")
                for i in range(n)]

    platform.metrics.record(events(1, 5.0, 40) + events(2, 400.0, 5))
    assert platform.serving.check_rollbacks() == []  # too few canary requests to judge
    platform.metrics.record(events(2, 400.0, 10))
    [event] = platform.serving.check_rollbacks()
    assert "p95 latency" in event.message and event.details["canary"] == 2
    assert client.serving.get("digits")["traffic"] == {"1": 100}


def test_a_request_past_its_timeout_gets_503_and_is_recorded(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    # a microsecond per request: the answer needs several turns of the event loop and a pool
    # thread, so the timeout always fires first
    client.serving.create("hasty", "digits@production", warm=True,
                          batching={"request_timeout_s": 1e-6})
    with pytest.raises(ModelyardError, match="within 1e-06s") as info:
        client.serving.predict("hasty", [digits().test_x[0].tolist()])
    assert info.value.code == "unavailable"
    now = utcnow()
    out = client.metrics.query("error_rate", now - timedelta(minutes=1),
                               now + timedelta(seconds=5), step_s=65, deployment="hasty")
    assert out["series"][0]["points"][0]["value"] == 1.0


def test_warming_a_model_that_cannot_load_changes_nothing(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    broken = register(registry, "alpha", "digits", b"not onnx either")
    with pytest.raises(ModelyardError, match="cannot be loaded"):
        client.serving.create("digits", f"digits@{broken}", warm=True)
    assert client.serving.list() == []
    client.serving.create("digits", "digits@production", warm=True)
    with pytest.raises(ModelyardError, match="cannot be loaded"):
        client.serving.update("digits", traffic={"1": 90, str(broken): 10}, warm=True)
    assert client.serving.get("digits")["traffic"] is None
    assert [e["kind"] for e in client.serving.events("digits")] == ["created"]
