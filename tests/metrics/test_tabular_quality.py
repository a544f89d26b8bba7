"""Online quality of number predictions (MAE, RMSE) and drift per named input feature."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import InvalidArgument
from modelyard.metrics.models import PredictionEvent
from modelyard.sdk.client import Client

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _event(i: int, label: str, features: dict[str, float]) -> PredictionEvent:
    return PredictionEvent(project="alpha", deployment="house", model="house", version=1,
                           time=T0 + timedelta(seconds=i % 60), latency_ms=1.0, label=label,
                           confidence=1.0, request_id=f"req-{i}",
                           input_summary={"mean": 0.0, "std": 0.0, "features": features})


def test_mae_and_rmse_read_labels_and_feedback_as_numbers(api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.metrics  # type: ignore[attr-defined]
    svc.record([_event(i, f"{100 + i}", {"x": 1.0}) for i in range(4)])
    client.metrics.feedback({"req-0": "100", "req-1": "103", "req-2": "98", "req-3": "oops"})
    got = {m: client.metrics.query(m, T0, T0 + timedelta(minutes=1), step_s=60)
           ["series"][0]["points"][0]["value"] for m in ("mae", "rmse")}
    errors = np.array([0.0, 2.0, 4.0])  # the unreadable feedback is left out
    assert got["mae"] == pytest.approx(errors.mean())
    assert got["rmse"] == pytest.approx(float(np.sqrt((errors ** 2).mean())))


def test_drift_per_feature_names_the_feature_that_moved(api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.metrics  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    ref_x, ref_y = rng.normal(0, 1, 500), rng.normal(10, 2, 500)
    svc.record([_event(i, "1", {"x": float(rng.normal(0, 1)), "y": float(rng.normal(16, 2))})
                for i in range(300)])
    out = client.metrics.feature_drift("house", {"x": ref_x.tolist(), "y": ref_y.tolist()},
                                       T0, T0 + timedelta(minutes=1))
    assert out["drifted"] == ["y"]
    assert out["features"]["x"]["psi"] < 0.1 < 1.0 < out["features"]["y"]["psi"]
    with pytest.raises(InvalidArgument) as e:  # not a feature of this model
        client.metrics.feature_drift("house", {"z": ref_x.tolist()}, T0,
                                     T0 + timedelta(minutes=1))
    assert "'z'" in e.value.message
