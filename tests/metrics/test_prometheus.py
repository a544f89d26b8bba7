"""A real Prometheus scrapes a live model server; PromQL gives back the requests sent."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.metrics._prometheus import instant, prometheus_server
from tests.serving._digits import digits, onnx_model, register


@pytest.mark.integration
def test_prometheus_counts_the_requests_sent(settings: Settings, api: TestClient, client: Client,
                                             admin_token: str) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    version = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("digits", f"digits@{version}")
    sent = 7
    with live_server(settings) as live:
        with httpx.Client(base_url=live.resolved_public_url,
                          headers={"Authorization": f"Bearer {admin_token}"}) as http:
            for i in range(sent):
                r = http.post("/api/v1/projects/alpha/deployments/digits/predict",
                              json={"inputs": [digits().test_x[i].tolist()]})
                assert r.status_code == 200, r.text
        with prometheus_server([f"127.0.0.1:{live.port}"]) as prom:
            query = 'sum(modelyard_serving_requests_total{deployment="digits",outcome="ok"})'
            deadline = time.monotonic() + 60
            value = None
            while time.monotonic() < deadline:
                result = instant(prom, query)
                if result:
                    value = float(result[0]["value"][1])  # type: ignore[index]
                    if value == sent:
                        break
                time.sleep(0.5)
            assert value == sent
            latency = instant(prom, 'sum(modelyard_serving_request_latency_seconds_count'
                                    '{deployment="digits"})')
            assert float(latency[0]["value"][1]) == sent  # type: ignore[index]
