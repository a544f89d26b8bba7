"""Probes, Prometheus exposition and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_probes_answer_without_a_token(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}


def test_metrics_are_prometheus_text(api: TestClient) -> None:
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")


def test_openapi_lists_every_component_under_one_app(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/api/v1/projects/{project}" in paths
    assert spec["info"]["title"] == "modelyard"
    assert api.get("/docs").status_code == 200
