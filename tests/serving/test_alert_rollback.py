"""An alert rule with action rollback makes its deployment serve the previous version
(issue 22 item 17)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from tests.metrics.test_alerts import _errors
from tests.serving._digits import digits
from tests.serving.conftest import DigitsModel


def test_a_firing_alert_rolls_the_deployment_back_to_the_version_before(
        api: TestClient, client: Client, digits_model: DigitsModel) -> None:
    client.serving.create("web", "digits@production")
    client.registry.set_alias("digits", "production", digits_model.v2)  # the release
    pixels = digits().test_x[:1].tolist()
    assert client.serving.predict("web", pixels)["model_version"] == digits_model.v2
    client.metrics.create_alert("errors", "error_rate", 0.1, deployment="web", window_s=60,
                                action="rollback")
    api.app.state.platform.metrics.record(_errors(20, 5))  # type: ignore[attr-defined]
    assert client.metrics.evaluate_alerts()[0]["state"] == "firing"
    assert client.serving.get("web")["traffic"] == {str(digits_model.v1): 100}
    assert client.serving.predict("web", pixels)["model_version"] == digits_model.v1
    rollback = client.serving.events("web")[0]
    assert rollback["kind"] == "rollback" and "alert errors" in rollback["message"]
    # the registry's record stands: production still names the release
    assert client.registry.resolve("digits@production")["version"] == digits_model.v2
    # still firing: nothing more happens
    client.metrics.evaluate_alerts()
    assert [e["kind"] for e in client.serving.events("web")].count("rollback") == 1


def test_a_firing_alert_stops_an_open_canary(api: TestClient, client: Client,
                                             digits_model: DigitsModel) -> None:
    client.serving.create("web", "digits@production",
                          traffic={str(digits_model.v1): 90, str(digits_model.v2): 10})
    client.metrics.create_alert("errors", "error_rate", 0.1, deployment="web", window_s=60,
                                action="rollback")
    api.app.state.platform.metrics.record(_errors(20, 5))  # type: ignore[attr-defined]
    client.metrics.evaluate_alerts()
    assert client.serving.get("web")["traffic"] == {str(digits_model.v1): 100}
