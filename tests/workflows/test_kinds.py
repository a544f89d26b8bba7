"""Component step kinds on the in-process platform: registering a model a step built."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from modelyard.workflows.service import WorkflowService
from tests.serving._digits import digits, expected_labels
from tests.workflows._packages import register


def test_a_registration_step_registers_what_an_inline_step_built_once(
        api: TestClient, client: Client, wf: WorkflowService) -> None:
    register(wf, "registered")
    run = wf.wait("alpha", wf.run("alpha", "registered", {}, "tester").id, timeout_s=120)
    assert run.state == "succeeded", run.error
    out = {s.step: s.output for s in run.steps}
    assert out["register"]["model"] == "digits-lr" and out["register"]["version"] == 1
    assert out["register"]["metrics"]["test_accuracy"] > 0.9  # a real classifier
    assert client.registry.resolve("digits-lr@production")["version"] == 1
    pixels = digits().test_x[:5]
    got = client.serving.predict("digits-lr", pixels.tolist())["predictions"]
    assert [p["label"] for p in got] == expected_labels(1.0, pixels)
    made = client.registry.lineage(f"pipeline_run:{run.id}", "downstream", depth=1)["nodes"]
    assert ("model_version", "digits-lr@1") in {(n["kind"], n["id"]) for n in made}

    again = wf.wait("alpha", wf.run("alpha", "registered", {}, "tester").id, timeout_s=120)
    states = {s.step: s.state for s in again.steps}
    assert states["fit_digits"] == states["register"] == "cached"
    assert [v["version"] for v in client.registry.list_versions("digits-lr")] == [1]

    other = wf.wait("alpha", wf.run("alpha", "registered", {"c": 0.05}, "tester").id,
                    timeout_s=120)
    assert {s.step: s.output for s in other.steps}["register"]["version"] == 2
    assert client.registry.resolve("digits-lr@production")["version"] == 2
