"""The API's own Prometheus families: requests by route template and status, and latency."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bearer


def _samples(api: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = api.get("/metrics").text
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def test_requests_are_counted_by_route_template_and_status(api: TestClient,
                                                           admin_token: str) -> None:
    h = bearer(admin_token)
    api.post("/api/v1/projects", json={"name": "alpha"}, headers=h)
    for _ in range(3):
        assert api.get("/api/v1/projects/alpha", headers=h).status_code == 200
    assert api.get("/api/v1/projects/nope", headers=h).status_code == 404
    assert api.get("/api/v1/projects/alpha").status_code == 401
    assert api.get("/no/such/path").status_code == 404

    counts = _samples(api, "modelyard_api_requests_total")
    route = "/api/v1/projects/{project}"

    def count(status: str, path: str = route) -> float:
        return counts.get((("method", "GET"), ("route", path), ("status", status)), 0)

    assert count("200") == 3
    assert count("404") == 1 and count("401") == 1  # the name of a project is never a label
    assert count("404", "unmatched") == 1
    assert not any(dict(k)["route"].endswith("/alpha") for k in counts)
    latency = _samples(api, "modelyard_api_request_seconds_count")
    assert latency[(("method", "GET"), ("route", route))] == 5
