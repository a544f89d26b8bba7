"""ServingService behaviour across deployments of one model: batching settings, pinning,
memory budget, failures."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient

from modelyard.core.errors import ResourceExhausted
from modelyard.sdk.client import Client
from tests.serving._digits import digits
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
