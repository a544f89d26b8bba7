"""What triggers a run and what a run runs: no-op events start nothing, a trigger or a run can
skip the cache, a run can pin an older version of its pipeline (issue 22 items 16, 17, 19)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.sdk.client import Client
from modelyard.workflows.service import WorkflowService
from tests.workflows._packages import MODULE, package


def test_a_pipeline_that_sets_the_alias_it_is_triggered_on_runs_once(
        api: TestClient, client: Client, wf: WorkflowService) -> None:
    from tests.serving._digits import onnx_model, register

    version = register(api.app.state.platform.registry, "alpha", "digits",  # type: ignore[attr-defined]
                       onnx_model(1.0))
    client.workflows.register_package(package(), f"{MODULE}:repromote")
    client.workflows.schedule("repromote", event="alias.moved",
                              match={"model": "digits", "alias": "production"})
    client.registry.set_alias("digits", "production", version)
    (run,) = client.workflows.list_runs("repromote")
    assert wf.wait("alpha", run["id"], timeout_s=60).state == "succeeded"
    # The run set production to the version it already had: nothing moved, nothing fired.
    assert len(client.workflows.list_runs("repromote")) == 1
    again = client.registry.set_alias("digits", "production", version)
    assert len(client.workflows.list_runs("repromote")) == 1
    assert len(client.registry.alias_history("digits", "production")) == 1
    assert again["moved"] is False
