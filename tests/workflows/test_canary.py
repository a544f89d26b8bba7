"""The canary step under live traffic: a candidate that fails requests is rolled back and not
promoted; one that serves them well is promoted. Real ONNX digits models, real predictions."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from modelyard.core.errors import ModelyardError
from modelyard.sdk.client import Client
from modelyard.workflows.models import Run
from modelyard.workflows.service import WorkflowService
from tests.serving._digits import digits, onnx_model, register
from tests.workflows import _packages

OBSERVE_S = 4.0  # long enough for the 20 candidate requests the rule needs at 50 %


def _stable_deployment(api: TestClient, client: Client) -> tuple[Any, int]:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    stable = register(platform.registry, "alpha", "digits", onnx_model(1.0))
    platform.registry.set_alias("alpha", "digits", "production", stable, "tester")
    client.serving.create("digits", "digits@production")
    return platform, stable


def _canary_under_traffic(client: Client, wf: WorkflowService, candidate: int) -> \
        tuple[Run, dict[int, int]]:
    """Runs the canary pipeline while a client keeps predicting; (run, answers per version,
    with failed requests counted under -1)."""
    _packages.register(wf, "canary_only")
    started = wf.run("alpha", "canary-only", {"model": "digits", "version": candidate,
                                              "canary_observe_s": OBSERVE_S}, "tester")
    row = [digits().test_x[0].tolist()]
    answers: dict[int, int] = {}
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            try:
                v = int(client.serving.predict("digits", row)["model_version"])
            except ModelyardError:
                v = -1
            answers[v] = answers.get(v, 0) + 1

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        run = wf.wait("alpha", started.id, timeout_s=120)
    finally:
        done.set()
        sender.join(30)
    return run, answers


def test_a_canary_failing_live_requests_is_rolled_back_and_not_promoted(
        api: TestClient, client: Client, wf: WorkflowService) -> None:
    platform, stable = _stable_deployment(api, client)
    broken = register(platform.registry, "alpha", "digits", b"this is not an onnx model")
    run, answers = _canary_under_traffic(client, wf, broken)
    assert run.state == "succeeded", run.error
    release = {s.step: s for s in run.steps}["release"]
    assert release.output["promoted"] is False
    assert f"canary version {broken} error rate" in release.output["reason"]
    assert answers.get(-1, 0) >= 20  # the candidate really got (and failed) live traffic
    assert client.registry.resolve("digits@production")["version"] == stable
    assert client.serving.get("digits")["traffic"] == {str(stable): 100}
    assert client.serving.predict("digits", [digits().test_x[0].tolist()])[
        "model_version"] == stable


def test_a_canary_serving_live_requests_well_is_promoted(
        api: TestClient, client: Client, wf: WorkflowService) -> None:
    platform, stable = _stable_deployment(api, client)
    better = register(platform.registry, "alpha", "digits", onnx_model(0.05))
    run, answers = _canary_under_traffic(client, wf, better)
    assert run.state == "succeeded", run.error
    release = {s.step: s for s in run.steps}["release"]
    assert release.output["promoted"] is True, release.output
    assert answers.get(better, 0) > 0 and answers.get(-1, 0) == 0
    assert client.registry.resolve("digits@production")["version"] == better
    dep = client.serving.get("digits")
    assert dep["traffic"] is None and dep["model_ref"] == "digits@production"
    assert client.serving.predict("digits", [digits().test_x[0].tolist()])[
        "model_version"] == better
