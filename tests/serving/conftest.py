"""Fixtures of serving tests: project alpha with a `digits` model (v1, v2) and `production`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.serving._digits import onnx_model, register


@dataclass
class DigitsModel:
    v1: int
    v2: int
    c1: float = 1.0
    c2: float = 0.01  # a weaker second version: its answers differ on some images


@pytest.fixture
def digits_model(api: TestClient, admin_token: str) -> DigitsModel:
    """Request it after `client` or `team` (which create project alpha); creates alpha if not."""
    h = {"Authorization": f"Bearer {admin_token}"}
    if api.get("/api/v1/projects/alpha", headers=h).status_code == 404:
        api.post("/api/v1/projects", json={"name": "alpha"}, headers=h)
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    m = DigitsModel(v1=0, v2=0)
    m.v1 = register(registry, "alpha", "digits", onnx_model(m.c1))
    m.v2 = register(registry, "alpha", "digits", onnx_model(m.c2))
    registry.set_alias("alpha", "digits", "production", m.v1)
    return m
