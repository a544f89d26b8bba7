"""`modelyard serve`: a replica on the main server's database and blobs serves its deployments."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from modelyard.serving.runtime import ModelKey
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


def _until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s:g} s: {what}"
        time.sleep(0.05)


def test_pinned_deployments_stay_pinned_after_a_restart_and_on_a_replica(
    settings: Settings, api: TestClient, client: Client, admin_token: str,
) -> None:
    """Pinned versions are loaded at start and never evicted, wherever they are served. A
    restart is a fresh server process on the same data: a new app with empty caches."""
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    version = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("digits", f"digits@{version}", pinned=True)
    key = ModelKey("alpha", "digits", version)

    def pinned_and_loaded(app: TestClient) -> Callable[[], bool]:
        cache = app.app.state.platform.serving.cache  # type: ignore[attr-defined]
        return lambda: cache.is_pinned(key) and key in cache.loaded_keys()

    restarted = settings.model_copy(update={"background": True})
    replica_settings = settings.model_copy(update={"role": "serving", "background": True})
    with TestClient(create_app(restarted)) as main, \
            TestClient(create_app(replica_settings)) as replica:
        _until(pinned_and_loaded(main), "pinned again after the restart")
        _until(pinned_and_loaded(replica), "pinned on the replica")
        Client(token=admin_token, project="alpha", http=main).serving.update(
            "digits", pinned=False)
        replica_cache = replica.app.state.platform.serving.cache  # type: ignore[attr-defined]
        _until(lambda: not replica_cache.is_pinned(key), "unpinned on the replica")
