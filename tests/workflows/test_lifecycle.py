"""Built-in pipelines end to end on real data (sklearn digits) through a live server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.workflows._packages import MODULE, package

pytestmark = pytest.mark.e2e


@pytest.fixture
def live(settings: Settings) -> Iterator[Client]:
    with live_server(settings.model_copy(update={"background": True})) as s:
        token = s.resolved_admin_token_file.read_text().strip()
        c = Client(s.resolved_public_url, token, "alpha", timeout=120)
        c.create_project("alpha")
        yield c
        c.close()


def _outputs(run: dict[str, Any]) -> dict[str, Any]:
    return {s["step"]: s["output"] for s in run["steps"]}


def test_digits_lifecycle_goes_from_raw_data_to_a_served_prediction(live: Client) -> None:
    live.workflows.register("digits-lifecycle")
    run = live.workflows.run("digits-lifecycle", wait=True, timeout_s=300)
    assert run["state"] == "succeeded", run["error"]
    out = _outputs(run)
    assert out["import_digits"]["imported"] is True
    assert out["train"]["metrics"]["val_accuracy"] > 0.8
    assert out["predict"]["predictions"][0]["label"] == "0"  # the first digit of the set is a 0
    assert out["request_metrics"]["value"] >= 1
    assert out["served"] is True
    assert live.registry.resolve("digits-cnn@production")["version"] == out["version"]["version"]
    assert live.serving.get("digits")["model_ref"] == "digits-cnn@production"
    # the run is in the lineage graph: the snapshot it read, the job, version and deployment
    # it made
    node = f"pipeline_run:{run['id']}"
    down = live.registry.lineage(node, "downstream", depth=1)["nodes"]
    assert {(n["kind"], n["id"]) for n in down} >= {
        ("job", out["train"]["job_id"]),
        ("model_version", f"digits-cnn@{out['version']['version']}")}
    assert "deployment" in {n["kind"] for n in down}
    up = live.registry.lineage(node, "upstream", depth=1)["nodes"]
    assert ("dataset_snapshot", out["snapshot"]["snapshot"]) in {(n["kind"], n["id"]) for n in up}


def _next_run(c: Client, seen: set[str], timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = [r for r in c.workflows.list_runs("continuous-training") if r["id"] not in seen]
        if new:
            seen.add(new[0]["id"])
            return c.workflows.wait(new[0]["id"], timeout_s=timeout_s)
        time.sleep(0.2)
    raise AssertionError("no run was started by the dataset commit")


def test_a_dataset_commit_retrains_and_promotes_only_a_better_model(live: Client) -> None:
    live.workflows.register("continuous-training")
    trigger = live.workflows.schedule("continuous-training", event="dataset.commit",
                                      match={"dataset": "digits"},
                                      params={"canary_observe_s": 1})
    seen: set[str] = set()

    live.datasets.import_builtin("digits", "sklearn:digits")  # commit 1: the first model
    first = _next_run(live, seen)
    assert first["state"] == "succeeded", first["error"]
    assert first["trigger"] == "event:dataset.commit"
    out = _outputs(first)
    assert out["evaluate"]["better"] is True and out["evaluate"]["baseline"] is None
    good = out["candidate"]["version"]
    study = live.hpo.get(out["tune"]["study_id"])  # the candidate is the study's best trial
    assert study["state"] == "completed" and len(live.hpo.trials(study["id"])) == 3
    assert out["tune"]["version"] == good
    assert out["release"]["promoted"] is True
    assert live.registry.resolve("digits-cnn@production")["version"] == good
    assert live.serving.get("digits")["model_ref"] == "digits-cnn@production"

    # commit 2 searching only learning rates far too small: the worse model is not promoted
    tiny_lr = {"lr": {"type": "float", "low": 0.00001, "high": 0.0001, "log": True}}
    live.workflows.update_schedule(trigger["id"],
                                   params={"hyperparameters": {"epochs": 1},
                                           "search_space": tiny_lr, "canary_observe_s": 1})
    live.datasets.import_builtin("digits", "sklearn:digits")
    second = _next_run(live, seen)
    assert second["state"] == "succeeded", second["error"]
    states = {s["step"]: s["state"] for s in second["steps"]}
    assert states["better"] == "skipped" and states["release"] == "skipped"
    out = _outputs(second)
    assert out["evaluate"]["better"] is False
    worse = out["candidate"]["version"]
    assert worse != good
    assert live.registry.resolve("digits-cnn@production")["version"] == good

    # a canary of a chosen version that holds (no live errors) is promoted
    live.workflows.register_package(package(), f"{MODULE}:canary_only")
    run = live.workflows.run("canary-only", {"version": worse}, wait=True, timeout_s=120)
    assert run["state"] == "succeeded", run["error"]
    assert _outputs(run)["release"]["promoted"] is True
    assert live.registry.resolve("digits-cnn@production")["version"] == worse
    dep = live.serving.get("digits")
    assert dep["traffic"] is None and dep["model_ref"] == "digits-cnn@production"
    kinds = [e["kind"] for e in live.serving.events("digits")]
    assert kinds.count("updated") >= 2  # the split, then every request to the promoted one


def test_an_hpo_study_step_hands_its_best_model_version_on(live: Client) -> None:
    live.workflows.register_package(package(), f"{MODULE}:tuned")
    run = live.workflows.run("tuned", wait=True, timeout_s=300)
    assert run["state"] == "succeeded", run["error"]
    out = _outputs(run)
    assert set(out["study"]["best_params"]) == {"lr"}
    assert out["best"]["version"] == out["study"]["version"]
    assert out["best"]["metrics"]["val_accuracy"] == out["study"]["best_value"]
