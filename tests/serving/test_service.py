"""ServingService behaviour across deployments of one model: batching settings, pinning,
memory budget, failures."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import helper, numpy_helper

from modelyard.core.errors import FailedPrecondition, ResourceExhausted, Unavailable
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from tests.conftest import bearer
from tests.serving._digits import digits, onnx_model, register
from tests.serving.conftest import DigitsModel


def _burst(serving: Any, deployment: str, n: int) -> list[str]:
    """`n` requests sent at once from one event loop: each answer's outcome."""
    pixels = digits().test_x[:1].tolist()

    async def one() -> str:
        try:
            await serving.predict("alpha", deployment, pixels)
            return "ok"
        except ResourceExhausted as e:
            return f"429 max_queue={e.details['max_queue']}"

    async def all_at_once() -> list[str]:
        await serving.predict("alpha", deployment, pixels)  # deployment and version cached
        return list(await asyncio.gather(*(one() for _ in range(n))))

    return asyncio.run(all_at_once())


def test_each_deployment_batches_with_its_own_settings(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    """Two deployments of one model version: a small queue set on one is not the other's."""
    serving = api.app.state.platform.serving  # type: ignore[attr-defined]
    client.serving.create("tight", "digits@production", warm=True,
                          batching={"max_queue": 1, "max_batch_size": 1})
    client.serving.create("roomy", "digits@production")
    assert _burst(serving, "roomy", 20) == ["ok"] * 20
    tight = _burst(serving, "tight", 5)
    assert tight[0] == "ok" and set(tight[1:]) == {"429 max_queue=1"}
    # a change of settings applies to the next request, the model stays loaded
    client.serving.update("roomy", batching={"max_queue": 2, "max_batch_size": 1})
    roomy = _burst(serving, "roomy", 5)
    assert roomy[:2] == ["ok", "ok"] and set(roomy[2:]) == {"429 max_queue=2"}
    client.serving.update("tight", batching={})
    assert _burst(serving, "tight", 20) == ["ok"] * 20


def _fails_unless_three_rows() -> bytes:
    """The digits network, then a Reshape to 3 rows: a batch of any other size fails in
    ONNX Runtime (a runtime fault, not a bad input)."""
    model = onnx.load_from_string(onnx_model(1.0))
    g = model.graph
    g.output[0].name = "reshaped"
    g.initializer.append(numpy_helper.from_array(np.array([3, 10], dtype=np.int64), "three"))
    g.node.append(helper.make_node("Reshape", ["logits", "three"], ["reshaped"]))
    return model.SerializeToString()


def test_failed_batches_are_logged_once_with_counts(
        api: TestClient, client: Client, caplog: pytest.LogCaptureFixture) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    version = register(registry, "alpha", "flaky", _fails_unless_three_rows())
    client.serving.create("flaky", f"flaky@{version}")
    pixels = digits().test_x[:3].tolist()
    with caplog.at_level(logging.INFO, logger="modelyard.serving"):
        for _ in range(5):
            with pytest.raises(Unavailable, match="failed to answer"):
                client.serving.predict("flaky", pixels[:1])
        client.serving.predict("flaky", pixels)  # three rows: the batch succeeds
    serving = [r for r in caplog.records if r.name == "modelyard.serving"]
    assert len([r for r in serving if r.exc_info]) == 1  # one traceback, the first failure's
    summary = [r.getMessage() for r in serving if "5 batches (5 requests)" in r.getMessage()]
    assert len(summary) == 1 and "flaky" in summary[0]


def test_a_model_that_can_never_fit_the_memory_budget_is_a_clear_4xx(
        settings: Settings, admin_token: str) -> None:
    tight = settings.model_copy(update={
        "serving": settings.serving.model_copy(update={"memory_budget_mb": 1})})
    with TestClient(create_app(tight), raise_server_exceptions=False) as api:
        client = Client(token=admin_token, project="alpha", http=api)
        client.create_project("alpha")
        registry = api.app.state.platform.registry  # type: ignore[attr-defined]
        big = register(registry, "alpha", "big", onnx_model(1.0, pad_bytes=1_000_000))
        client.serving.create("big", f"big@{big}")
        r = api.post("/api/v1/projects/alpha/deployments/big/predict",
                     json={"inputs": digits().test_x[:1].tolist()}, headers=bearer(admin_token))
        assert r.status_code == 409 and "Retry-After" not in r.headers, r.text
        assert "MEMORY_BUDGET_MB" in r.json()["error"]["message"]
        with pytest.raises(FailedPrecondition, match="memory budget"):  # nothing stored
            client.serving.create("big-pinned", f"big@{big}", pinned=True)
        assert [d["name"] for d in client.serving.list()] == ["big"]


def test_an_update_that_changes_nothing_records_no_event(client: Client,
                                                         digits_model: DigitsModel) -> None:
    client.serving.create("web", "digits@production", batching={"max_batch_size": 4})
    client.serving.update("web", model_ref="digits@production", batching={"max_batch_size": 4},
                          pinned=False, rollback=None)
    assert [e["kind"] for e in client.serving.events("web")] == ["created"]
    client.serving.update("web", batching={"max_batch_size": 8})
    events = client.serving.events("web")
    assert [e["kind"] for e in events] == ["updated", "created"]
    assert events[0]["details"]["batching"]["max_batch_size"] == 8
