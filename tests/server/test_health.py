"""Probes, Prometheus exposition and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def test_probes_answer_without_a_token(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready"
    # What user code runs under here is part of readiness's details (bwrap is installed).
    assert ready["details"]["sandbox"]["mode"] == "bubblewrap"
    assert ready["details"]["sandbox"]["setting"] == "auto"


def test_metrics_are_prometheus_text(api: TestClient) -> None:
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    # what a Prometheus scrape of a fresh server finds: serving and prediction-store families
    assert {"modelyard_serving_requests", "modelyard_serving_request_latency_seconds",
            "modelyard_serving_loaded_models", "modelyard_metrics_events_stored"} <= set(families)
    assert families["modelyard_serving_request_latency_seconds"].type == "histogram"
    assert families["modelyard_serving_loaded_models"].samples[0].value == 0


def test_openapi_lists_every_component_under_one_app(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/api/v1/projects/{project}" in paths
    assert spec["info"]["title"] == "modelyard"
    tags = {t for ops in paths.values() for op in ops.values() for t in op.get("tags", [])}
    assert {"access", "datasets", "training", "hpo", "registry", "serving", "workflows",
            "metrics", "open inference protocol"} <= tags
    docs = api.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text  # Swagger UI on our document
