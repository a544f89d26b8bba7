"""Drift on real data: digits served by a real deployment, compared with the training inputs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import InvalidArgument
from modelyard.core.ids import utcnow
from modelyard.sdk.client import Client
from tests.serving._digits import digits, onnx_model, register


@pytest.fixture
def served(api: TestClient, client: Client) -> Client:
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    v = register(registry, "alpha", "digits", onnx_model(1.0))
    client.serving.create("plain", f"digits@{v}")
    client.serving.create("shifted", f"digits@{v}")
    return client


def test_shifted_inputs_raise_input_drift_and_unshifted_do_not(served: Client) -> None:
    d = digits()
    reference = (d.train_x / 255).reshape(len(d.train_x), -1).mean(axis=1).tolist()
    test = d.test_x  # all 397 held-out images
    shifted = np.clip(test + 60, 0, 255)  # brighter images: every row's mean moves up
    start = utcnow() - timedelta(seconds=5)
    for i in range(0, len(test), 50):
        served.serving.predict("plain", test[i:i + 50].tolist())
        served.serving.predict("shifted", shifted[i:i + 50].tolist())
    end = utcnow() + timedelta(seconds=5)
    plain = served.metrics.input_drift("plain", reference, start, end)
    moved = served.metrics.input_drift("shifted", reference, start, end)
    assert plain["live_rows"] == moved["live_rows"] == len(test)
    assert not plain["drifted"] and plain["psi"] < 0.1
    assert moved["drifted"] and moved["psi"] > 1.0


@pytest.fixture
def trained(api: TestClient, client: Client) -> Client:
    """Deployments `plain` and `shifted` of digits@1, trained on a snapshot of the digits."""
    client.datasets.import_builtin("digits", "sklearn:digits")
    snap = client.datasets.snapshot("digits")
    registry = api.app.state.platform.registry  # type: ignore[attr-defined]
    v = register(registry, "alpha", "digits", onnx_model(1.0), snapshot=snap["id"])
    client.serving.create("plain", f"digits@{v}")
    client.serving.create("shifted", f"digits@{v}")
    return client


def test_input_drift_without_reference_compares_with_the_training_snapshot(
        trained: Client) -> None:
    test = digits().test_x  # raw pixels 0..240, as clients send them
    start = utcnow() - timedelta(seconds=5)
    for i in range(0, len(test), 100):
        trained.serving.predict("plain", test[i:i + 100].tolist())
        trained.serving.predict("shifted", np.clip(test[i:i + 100] + 60, 0, 255).tolist())
    end = utcnow() + timedelta(seconds=5)
    plain = trained.metrics.input_drift("plain", None, start, end)
    moved = trained.metrics.input_drift("shifted", None, start, end)
    assert plain["live_rows"] == moved["live_rows"] == len(test)
    assert not plain["drifted"] and plain["psi"] < 0.1
    assert moved["drifted"] and moved["psi"] > 1.0
    # an alert rule may leave the reference out as well
    for name in ("plain", "shifted"):
        trained.metrics.create_alert(f"{name}-inputs", "input_psi", threshold=0.2,
                                     window_s=600, deployment=name)
    states = {a["spec"]["name"]: a["state"] for a in trained.metrics.evaluate_alerts()}
    assert states == {"plain-inputs": "ok", "shifted-inputs": "firing"}
    trained.serving.delete("plain")  # a rule of a deployment gone stops no other rule
    states = {a["spec"]["name"]: a["state"] for a in trained.metrics.evaluate_alerts()}
    assert states == {"plain-inputs": "no_data", "shifted-inputs": "firing"}


def test_a_version_without_training_snapshot_needs_a_reference(served: Client) -> None:
    now = utcnow()
    served.serving.predict("plain", digits().test_x[:20].tolist())
    with pytest.raises(InvalidArgument, match="not trained on a dataset snapshot.*pass "
                                              "`reference`") as e:
        served.metrics.input_drift("plain", None, now - timedelta(minutes=1),
                                   now + timedelta(minutes=1))
    assert e.value.details["field"] == "reference"
    with pytest.raises(InvalidArgument, match="pass `reference`"):
        served.metrics.create_alert("inputs", "input_psi", threshold=0.2, deployment="plain")


def test_predicted_label_drift_on_served_predictions(served: Client) -> None:
    d = digits()
    labels, counts = np.unique(d.train_y, return_counts=True)
    reference = {str(int(k)): float(c) for k, c in zip(labels, counts, strict=True)}
    start = utcnow() - timedelta(seconds=5)
    served.serving.predict("plain", d.test_x[:200].tolist())
    ones = d.test_x[:397][d.test_y[:397] == 1]  # only images of a 1
    served.serving.predict("shifted", ones.tolist())
    end = utcnow() + timedelta(seconds=5)
    assert not served.metrics.drift("plain", reference, start, end)["drifted"]
    assert served.metrics.drift("shifted", reference, start, end)["drifted"]


def test_input_drift_needs_served_inputs_and_a_reference(served: Client) -> None:
    now = utcnow()
    with pytest.raises(InvalidArgument, match="no served inputs"):
        served.metrics.input_drift("plain", [0.1] * 20, now - timedelta(minutes=1), now)
    with pytest.raises(InvalidArgument):
        served.metrics.input_drift("plain", [0.1] * 3, now - timedelta(minutes=1), now)
