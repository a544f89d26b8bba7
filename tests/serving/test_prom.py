"""What serving shows on /metrics: every prediction in the API request counts (fast path
too), model loads and evictions, shadow traffic apart from what callers saw."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from tests.serving._digits import digits, onnx_model, register

PREDICT = "/api/v1/projects/{project}/deployments/{name}/predict"


def _value(api: TestClient, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.fixture
def small(settings: Settings) -> Iterator[TestClient]:
    """A server whose serving memory budget (1 MB) holds one 600 KB model at a time."""
    tight = settings.model_copy(update={
        "serving": settings.serving.model_copy(update={"memory_budget_mb": 1})})
    with TestClient(create_app(tight), raise_server_exceptions=False) as api:
        yield api


def test_every_prediction_is_in_the_api_request_metrics(api: TestClient, client: Client,
                                                        admin_token: str) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    version = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("digits", f"digits@{version}")
    pixels = digits().test_x[:2].tolist()
    for _ in range(5):
        client.serving.predict("digits", pixels)
    assert api.app.fast_path.answered >= 4  # type: ignore[attr-defined]  # after the 1st
    assert _value(api, "modelyard_api_requests_total", method="POST", route=PREDICT,
                  status="200") == 5
    v2 = {"inputs": [{"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32",
                      "data": [0.0] * 64}]}
    h = {"Authorization": f"Bearer {admin_token}", "X-Modelyard-Project": "alpha"}
    for _ in range(3):
        assert api.post("/v2/models/digits/infer", json=v2, headers=h).status_code == 200
    assert _value(api, "modelyard_api_requests_total", method="POST",
                  route="/v2/models/{model}/infer", status="200") == 3
    assert api.post("/api/v1/projects/alpha/deployments/nope/predict", json={"inputs": pixels},
                    headers=h).status_code == 404
    assert _value(api, "modelyard_api_requests_total", route=PREDICT, status="404") == 1


def test_shadow_requests_are_counted_apart_from_what_callers_saw(
        api: TestClient, client: Client) -> None:
    """A failing shadow version is visible, but not as errors of the deployment."""
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    good = register(registry, "alpha", "digits", onnx_model(1.0))
    broken = register(registry, "alpha", "digits", b"not an onnx model")
    client.serving.create("digits", f"digits@{good}", shadow_version=broken)
    for _ in range(3):
        client.serving.predict("digits", digits().test_x[:1].tolist())
    assert _value(api, "modelyard_serving_requests_total", outcome="error") == 0
    assert _value(api, "modelyard_serving_requests_total", outcome="ok") == 3
    # A shadow call runs after the caller's answer: wait (bounded) for the three of them.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _value(
            api, "modelyard_serving_shadow_requests_total", deployment="digits",
            version=str(broken), outcome="error") < 3:
        time.sleep(0.05)
    assert _value(api, "modelyard_serving_shadow_requests_total", deployment="digits",
                  version=str(broken), outcome="error") == 3


def test_model_loads_and_evictions_are_counted(small: TestClient, admin_token: str) -> None:
    client = Client(token=admin_token, project="alpha", http=small)
    client.create_project("alpha")
    registry = small.app.state.platform.registry  # type: ignore[attr-defined]
    a = register(registry, "alpha", "digits", onnx_model(1.0, pad_bytes=200_000))
    b = register(registry, "alpha", "digits", onnx_model(1.0, pad_bytes=200_000))
    client.serving.create("digits", f"digits@{a}")
    pixels = digits().test_x[:1].tolist()
    for version in (a, b, a):
        client.serving.predict("digits", pixels, version=version)
    loads = {v: _value(small, "modelyard_serving_model_loads_total", version=str(v))
             for v in (a, b)}
    assert loads == {a: 2, b: 1}
    assert _value(small, "modelyard_serving_model_evictions_total", version=str(a),
                  reason="memory_budget") == 1
    assert _value(small, "modelyard_serving_model_evictions_total", version=str(b),
                  reason="memory_budget") == 1
