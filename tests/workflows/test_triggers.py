"""What triggers a run and what a run runs: no-op events start nothing, a trigger or a run can
skip the cache, a run can pin an older version of its pipeline (issue 22 items 16, 17, 19)."""

from __future__ import annotations

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelyard.core.errors import NotFound
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.workflows.service import WorkflowService
from tests._servers.live import live_server
from tests.workflows._packages import MODULE, SOURCE, count, package, zipped


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


def test_a_failed_python_step_keeps_its_traceback_and_the_end_of_its_output(
        client: Client) -> None:
    client.workflows.register_package(package(), f"{MODULE}:failing")
    run = client.workflows.run("failing", wait=True, timeout_s=60)
    assert run["state"] == "failed"
    (noisy,) = run["steps"]
    assert noisy["state"] == "failed"
    assert "ValueError: shard 7 has a bad row" in noisy["error"]
    # the user's own frame and line, from the sandboxed process
    assert 'wfpipes.py", line' in noisy["traceback"]
    assert "raise ValueError" in noisy["traceback"]
    assert noisy["log_tail"].splitlines() == ["loading shard 7", "row 0 ok", "row 1 ok",
                                              "row 2 ok"]


def test_a_run_or_a_trigger_can_skip_the_cache(client: Client, wf: WorkflowService,
                                                workdir: str) -> None:
    client.workflows.register_package(package(), f"{MODULE}:cached")
    first = client.workflows.run("cached", {"workdir": workdir}, wait=True, timeout_s=60)
    assert first["state"] == "succeeded"
    fresh = client.workflows.run("cached", {"workdir": workdir}, wait=True, timeout_s=60,
                                 no_cache=True)
    assert fresh["no_cache"] is True
    assert {s["state"] for s in fresh["steps"]} == {"succeeded"}
    assert [count(workdir, s) for s in "abcd"] == [2, 2, 2, 2]
    # An alert retraining on unchanged data: its trigger says no_cache, so the steps run again
    client.workflows.schedule("cached", event="alert.firing", match={"alert": "accuracy"},
                              params={"workdir": workdir}, no_cache=True)
    (run,) = wf.on_event("alert.firing", {"project": "alpha", "alert": "accuracy"})
    assert wf.wait("alpha", run.id, 60).state == "succeeded"
    assert [count(workdir, s) for s in "abcd"] == [3, 3, 3, 3]
    # and a plain run after it is answered from the cache again
    cached = client.workflows.run("cached", {"workdir": workdir}, wait=True, timeout_s=60)
    assert {s["state"] for s in cached["steps"]} == {"cached"}


EDITED = """
from modelyard.workflows import Pipeline, step

@step
def version() -> str:
    return "{v}"

pipeline = Pipeline("edited", [version])
"""


def test_a_run_can_use_an_older_version_of_its_pipeline(client: Client) -> None:
    v1 = client.workflows.register_package(zipped({"p.py": EDITED.format(v="v1")}), "p:pipeline")
    v2 = client.workflows.register_package(zipped({"p.py": EDITED.format(v="v2")}), "p:pipeline")
    assert [(v["hash"], v["current"]) for v in client.workflows.versions("edited")] == [
        (v1["definition_hash"], False), (v2["definition_hash"], True)]
    old = client.workflows.run("edited", version=v1["definition_hash"][:10], wait=True,
                               timeout_s=60)
    assert old["state"] == "succeeded", old["error"]
    assert old["version_hash"] == v1["definition_hash"]
    assert old["package_digest"] == v1["package_digest"]
    assert old["steps"][0]["output"] == "v1"
    new = client.workflows.run("edited", wait=True, timeout_s=60)
    assert (new["version_hash"], new["steps"][0]["output"]) == (v2["definition_hash"], "v2")
    with pytest.raises(NotFound, match="pipeline versions edited"):
        client.workflows.run("edited", version="0123456789")


def test_cli_lists_versions_runs_one_afresh_and_shows_a_failed_steps_output(
        settings: Settings, workdir: str) -> None:
    from modelyard.cli.main import app

    with live_server(settings.model_copy(update={"background": True})) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        env = {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": "alpha", "COLUMNS": "200"}
        Client(live.resolved_public_url, token).create_project("alpha")
        runner = CliRunner()

        def cli(*args: str) -> Result:
            return runner.invoke(app, list(args), env=env)

        for attr in ("cached", "failing"):
            assert cli("pipeline", "register", str(SOURCE), "--entry",
                       f"{MODULE}:{attr}").exit_code == 0
        r = cli("pipeline", "versions", "cached")
        assert r.exit_code == 0, r.output
        current = Client(live.resolved_public_url, token, "alpha").workflows.get("cached")
        assert current["definition_hash"][:12] in r.output and "*" in r.output
        for extra in ([], ["--no-cache"], ["--version", current["definition_hash"][:8]]):
            r = cli("pipeline", "run", "cached", "-P", f"workdir={workdir}", "--wait", *extra)
            assert r.exit_code == 0, r.output
        assert count(workdir, "a") == 2  # the first run and --no-cache ran it; --version: cached
        r = cli("pipeline", "run", "failing", "--wait")
        assert r.exit_code == 1
        assert "row 2 ok" in r.output and "loading shard 7" in r.output
        assert "Traceback" in r.output and "ValueError: shard 7 has a bad row" in r.output
