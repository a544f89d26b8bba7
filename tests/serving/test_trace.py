"""Issue 21: a prediction names what answered it, can be looked up, and traces back to its
run in one lineage call; versions in use and followed aliases cannot be removed."""

from __future__ import annotations

import pytest

from modelyard.core.errors import Conflict, NotFound
from modelyard.sdk.client import Client
from tests.serving.conftest import DigitsModel

IMAGE = [[[0.0] * 8] * 8]


def test_a_prediction_names_its_deployment_model_and_version_and_can_be_looked_up(
        client: Client, digits_model: DigitsModel) -> None:
    client.serving.create("prod", "digits@production")
    out = client.serving.predict("prod", IMAGE)
    assert (out["deployment"], out["model"], out["model_version"]) == ("prod", "digits", 1)

    found = client.serving.prediction("prod", out["request_id"])
    assert (found["version"], found["model"], found["outcome"]) == (1, "digits", "ok")
    assert found["outputs"][0]["label"] == out["predictions"][0]["label"]
    assert found["latency_ms"] >= 0
    with pytest.raises(NotFound):
        client.serving.prediction("prod", "req_nosuchrequest")


def test_v2_answers_carry_the_trace_in_headers(client: Client, digits_model: DigitsModel,
                                               api: object, admin_token: str) -> None:
    client.serving.create("prod", "digits@production")
    body = {"inputs": [{"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32",
                        "data": [0.0] * 64}]}
    r = api.post("/v2/models/prod/infer", json=body,  # type: ignore[attr-defined]
                 headers={"Authorization": f"Bearer {admin_token}",
                          "X-Modelyard-Project": "alpha"})
    assert r.status_code == 200, r.text
    assert r.headers["x-modelyard-model"] == "digits"
    assert r.headers["x-modelyard-deployment"] == "prod"
    assert r.headers["x-modelyard-model-version"] == "1"
    assert r.headers["x-request-id"] == r.json()["id"]


def test_lineage_of_a_prediction_reaches_its_run_with_params_and_metrics(
        client: Client, digits_model: DigitsModel) -> None:
    run = client.registry.create_run("train", params={"lr": 0.1})
    client.registry.log_metrics(run["id"], [{"key": "acc", "step": 1, "value": 0.9}])
    client.registry.add_edge("run", run["id"], "model_version", "digits@1", "logged")
    dep = client.serving.create("prod", "digits@production")
    rid = client.serving.predict("prod", IMAGE)["request_id"]

    graph = client.registry.lineage(f"prediction:{rid}")
    nodes = {(n["kind"], n["id"]): n["attrs"] for n in graph["nodes"]}
    assert nodes[("prediction", rid)]["deployment_at_time"]["model_ref"] == "digits@production"
    assert nodes[("deployment", dep["id"])]["name"] == "prod"
    assert nodes[("run", run["id"])]["params"] == {"lr": 0.1}
    assert nodes[("run", run["id"])]["metrics"] == {"acc": 0.9}
    assert "created_at" in nodes[("model_version", "digits@1")]
    assert all(e["created_at"] for e in graph["edges"])

    by_name = client.registry.lineage("deployment:prod", direction="downstream")
    assert by_name["root"]["id"] == dep["id"]
    for unknown in ("prediction:req_nosuchrequest", "deployment:nosuch"):
        with pytest.raises(NotFound):
            client.registry.lineage(unknown)


def test_an_edge_naming_another_projects_run_is_refused(client: Client,
                                                         digits_model: DigitsModel) -> None:
    client.create_project("beta")
    theirs = client.registry.create_run("x", project="beta")
    with pytest.raises(NotFound):
        client.registry.add_edge("run", theirs["id"], "model_version", "digits@1")


def test_versions_in_use_and_followed_aliases_are_not_removed(
        client: Client, digits_model: DigitsModel) -> None:
    reg = client.registry
    client.serving.create("prod", "digits@production")
    client.serving.create("pinned", "digits@2")
    with pytest.raises(Conflict) as e:
        reg.delete_alias("digits", "production")
    assert e.value.details["deployments"] == ["prod"]
    with pytest.raises(Conflict) as e:
        reg.delete_version("digits", 1)
    assert e.value.details["deployments"] == ["prod"]
    assert e.value.details["aliases"] == ["production"]
    with pytest.raises(Conflict):
        reg.update_version("digits", 2, archived=True)

    client.serving.delete("pinned")
    v2 = reg.update_version("digits", 2, description="weaker", tags={"stage": "old"},
                            archived=True)
    assert (v2["description"], v2["tags"], v2["archived_at"] is not None) == (
        "weaker", {"stage": "old"}, True)
    with pytest.raises(Conflict):  # an archived version takes no new alias
        reg.set_alias("digits", "staging", 2)
    reg.delete_version("digits", 2)
    assert [v["version"] for v in reg.list_versions("digits")] == [1]
