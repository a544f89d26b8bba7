"""Alert rules over queries and drift, with state and history."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from modelyard.core.ids import utcnow
from modelyard.metrics.models import PredictionEvent
from modelyard.sdk.client import Client
from tests.conftest import Team
from tests.serving._digits import digits, onnx_model, register


def _errors(n: int, errors: int) -> list[PredictionEvent]:
    now = utcnow()
    return [PredictionEvent(project="alpha", deployment="web", model="m", version=1,
                            time=now - timedelta(seconds=1), latency_ms=3.0,
                            outcome="error" if i < errors else "ok", request_id=f"r{i}")
            for i in range(n)]


def test_a_rule_fires_and_resolves_and_keeps_its_history(api: TestClient,
                                                         client: Client) -> None:
    metrics = api.app.state.platform.metrics  # type: ignore[attr-defined]
    rule = client.metrics.create_alert("errors", "error_rate", 0.1, deployment="web",
                                       window_s=60)
    assert rule["state"] == "no_data"
    [r] = client.metrics.evaluate_alerts()
    assert r["state"] == "no_data" and r["value"] is None
    metrics.record(_errors(20, 5))
    [r] = client.metrics.evaluate_alerts()
    assert r["state"] == "firing" and r["value"] == pytest.approx(0.25)
    metrics.record(_errors(80, 0))  # 5 errors in 100 requests now
    [r] = client.metrics.evaluate_alerts()
    assert r["state"] == "ok" and r["value"] == pytest.approx(0.05)
    client.metrics.evaluate_alerts()  # no change: nothing new in the history
    history = client.metrics.alert_history("errors")
    assert [(h["from_state"], h["to_state"]) for h in history] == [("firing", "ok"),
                                                                   ("no_data", "firing")]
    assert "0.25" in history[1]["message"]
    assert client.metrics.alert("errors")["state"] == "ok"
    client.metrics.delete_alert("errors")
    with pytest.raises(NotFound):
        client.metrics.alert("errors")


def test_a_shifted_input_distribution_raises_the_drift_alert(api: TestClient,
                                                             client: Client) -> None:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    v = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("plain", f"digits@{v}")
    client.serving.create("shifted", f"digits@{v}")
    d = digits()
    reference = (d.train_x / 255).reshape(len(d.train_x), -1).mean(axis=1).tolist()
    for name in ("plain", "shifted"):
        client.metrics.create_alert(f"drift-{name}", "input_psi", 0.2, deployment=name,
                                    reference=reference, window_s=600)
    for i in range(0, len(d.test_x), 100):
        client.serving.predict("plain", d.test_x[i:i + 100].tolist())
        client.serving.predict("shifted", np.clip(d.test_x[i:i + 100] + 60, 0, 255).tolist())
    states = {r["spec"]["name"]: r["state"] for r in client.metrics.evaluate_alerts()}
    assert states == {"drift-plain": "ok", "drift-shifted": "firing"}


def test_bad_rules_are_refused(api: TestClient, team: Team) -> None:
    client = Client(token=team.editor, project="alpha", http=api)
    client.metrics.create_alert("slow", "latency_p95", 100)
    with pytest.raises(AlreadyExists):
        client.metrics.create_alert("slow", "latency_p95", 100)
    with pytest.raises(InvalidArgument, match="deployment"):
        client.metrics.create_alert("d", "input_psi", 0.2, reference=[0.1] * 20)
    with pytest.raises(InvalidArgument, match="reference"):
        client.metrics.create_alert("d", "prediction_psi", 0.2, deployment="x")
    with pytest.raises(InvalidArgument):
        client.metrics.create_alert("d", "median", 0.2)
    viewer = Client(token=team.viewer, project="alpha", http=api)
    assert [r["spec"]["name"] for r in viewer.metrics.alerts()] == ["slow"]
    with pytest.raises(PermissionDenied):
        viewer.metrics.create_alert("mine", "count", 1)
