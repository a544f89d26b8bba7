"""The `modelyard` command has one working group per component.

`cli/main.py` skips a group whose module fails to import, so a broken component would silently
vanish from the command; these tests notice. Each group then answers a real call against a live
server, with data the test put there through the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from modelyard.cli.main import GROUPS
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.cli.runner import run

COMPONENT_GROUPS = {"project", "dataset", "train", "hpo", "model", "lineage", "deploy",
                    "metrics", "pipeline"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    settings = Settings(home=tmp_path_factory.mktemp("cli-groups") / "home", background=False)
    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token=token, project="gamma") as c:
            c.create_project("gamma")
            r = c.registry.create_run("cli", params={"lr": 0.5}, job_id="job_g",
                                      code_hash="code_g")
            art = c.registry.upload_artifact(b"weights", name="model.onnx")
            c.registry.register_version("clf", {"model.onnx": art["digest"]}, run_id=r["id"])
            # A real deployment (never asked to predict, so its weights are never loaded):
            # it records its own edge from the version it serves.
            c.serving.create("dep_g", "clf@1")
        yield {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": "gamma", "RUN": r["id"]}


def test_every_component_has_its_group_mounted() -> None:
    assert {name for _, name in GROUPS} >= COMPONENT_GROUPS
    out = run(["--help"], {})
    assert out.code == 0, out.stderr
    listed = {line.split()[1] for line in out.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1}
    assert COMPONENT_GROUPS | {"server", "serve", "demo"} <= listed


def _json(args: list[str], env: dict[str, str | None]) -> object:
    out = run(["--json", *args], env)
    assert out.code == 0, (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_each_group_answers_against_a_live_server(server: dict[str, str | None]) -> None:
    assert "gamma" in [p["name"] for p in _json(["project", "list"], server)]  # type: ignore[union-attr,index]
    assert _json(["dataset", "list"], server) in ([], {"items": [], "next_page_token": None})
    trainers = _json(["train", "trainers"], server)
    assert "digits-cnn" in json.dumps(trainers)
    assert _json(["train", "list"], server) in ([], {"items": [], "next_page_token": None})
    assert _json(["hpo", "list"], server) in ([], {"items": [], "next_page_token": None})
    models = _json(["model", "list"], server)
    assert [m["name"] for m in models] == ["clf"]  # type: ignore[union-attr,index]
    assert [d["name"] for d in _json(["deploy", "list"], server)] == ["dep_g"]  # type: ignore[union-attr,index]
    assert _json(["metrics", "alerts"], server) == []
    assert _json(["pipeline", "list"], server) == []


def test_metrics_query_and_lineage_print_for_humans(server: dict[str, str | None]) -> None:
    query = run(["metrics", "query", "count", "--since", "30m", "--step", "600"], server)
    assert query.code == 0, query.stderr
    tree = run(["lineage", "model:clf@1"], server)
    assert tree.code == 0, tree.stderr
    assert "clf@1" in tree.stdout


def test_lineage_walks_downstream_and_stops_at_its_depth(server: dict[str, str | None]) -> None:
    run_id = server["RUN"]
    down = run(["lineage", f"run:{run_id}", "--downstream"], server)
    assert down.code == 0, down.stderr
    for label in (f"run {run_id}", "model_version clf@1", "served_by → deployment dep_"):
        assert label in down.stdout, down.stdout
    shallow = run(["--json", "lineage", f"run:{run_id}", "--downstream", "--depth", "1"], server)
    # one hop: the version the run made, not the deployment behind the version
    assert {n["kind"] for n in json.loads(shallow.stdout)["nodes"]} == {"run", "model_version"}
    missing = run(["lineage", "job:job_nope", "--downstream"], server)
    assert missing.code == 1 and "not_found" in missing.err_text


def test_a_group_command_on_a_missing_object_exits_1_with_the_servers_message(
        server: dict[str, str | None]) -> None:
    out = run(["model", "resolve", "nope@3"], server)
    assert out.code == 1
    assert "not_found" in out.err_text and "nope" in out.err_text
