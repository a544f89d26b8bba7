"""`modelyard serve`: a replica on the main server's database and blobs serves its deployments."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from tests.conftest import bearer
from tests.serving._digits import digits, expected_labels, onnx_model, register


def test_a_serving_replica_answers_for_deployments_made_on_the_main_server(
    settings: Settings, api: TestClient, client: Client, admin_token: str,
) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    version = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("digits", f"digits@{version}")
    pixels = digits().test_x[:5]

    replica_settings = settings.model_copy(update={"role": "serving", "background": True})
    with TestClient(create_app(replica_settings)) as replica:
        r = replica.post("/api/v1/projects/alpha/deployments/digits/predict",
                         json={"inputs": pixels.tolist()}, headers=bearer(admin_token))
        assert r.status_code == 200, r.text
        labels = [p["label"] for p in r.json()["predictions"]]
        assert labels == expected_labels(1.0, pixels)
        # A replica is only a model server: no scheduler routes, no dataset routes.
        assert replica.get("/api/v1/projects/alpha/datasets",
                           headers=bearer(admin_token)).status_code == 404
        assert replica.get("/v2/health/ready").status_code == 200
