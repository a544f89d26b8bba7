"""The real `mlflow` client, unchanged code with MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN
set, logs into modelyard: its runs, params, metric series, tags, artifacts, model version and
alias are then there in modelyard's own API and lineage; an unsupported call gets MLflow's
error shape.

The client runs as its own process (`_client.py`, with this venv's Python: `mlflow-skinny` is a
dev dependency that moves no pinned package), against a live server on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    home = tmp_path_factory.mktemp("mlflow") / "home"
    with embedded_server(Settings(home=home, background=False)) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token=token, project="alpha") as c:
            c.create_project("alpha")
        yield live, token


@pytest.fixture(scope="module")
def logged(server: tuple[Settings, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    live, token = server
    work = tmp_path_factory.mktemp("mlflow-client")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELYARD_"))}
    env.update(MLFLOW_TRACKING_URI=f"{live.resolved_public_url}/api/v1/projects/alpha/mlflow",
               MLFLOW_TRACKING_TOKEN=token, HOME=str(work), PYTHONWARNINGS="ignore",
               GIT_PYTHON_REFRESH="quiet", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    proc = subprocess.run([sys.executable, str(HERE / "_client.py")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]


@pytest.fixture
def sdk(server: tuple[Settings, str]) -> Iterator[Client]:
    live, token = server
    with Client(live.resolved_public_url, token=token, project="alpha") as c:
        yield c


def test_the_client_reads_back_what_it_logged(logged: dict[str, Any]) -> None:
    assert logged["manual_status"] == "FINISHED"
    assert logged["manual_params"] == {"lr": "0.1", "layers": "2", "optimizer": "adam",
                                       "batch_size": "32"}
    assert logged["loss_history"] == [[0, 1.0], [1, 0.5], [2, pytest.approx(1 / 3)]]
    assert logged["listed"] == ["config.json", "reports"]
    assert logged["listed_reports"] == ["reports/notes.txt"]
    assert logged["downloaded"] == "hello from mlflow"
    assert logged["searched"] == [logged["manual"]]
    assert logged["by_alias"] == str(logged["version"]) and logged["loaded_matches"]


def test_runs_params_metrics_and_tags_are_modelyards(logged: dict[str, Any], sdk: Client) -> None:
    run = sdk.registry.get_run(logged["manual"])
    assert run["experiment"] == "mlflow-compat" and run["status"] == "finished"
    assert run["params"] == {"lr": "0.1", "layers": "2", "optimizer": "adam", "batch_size": "32"}
    assert run["tags"]["team"] == "vision" and run["tags"]["stage"] == "dev"
    assert run["tags"]["mlflow.runName"] == "manual"
    assert {"loss", "acc", "f1", "val_loss"} <= set(run["metrics"])
    series = sdk.registry.get_metric_series(logged["manual"], "loss")
    assert [(p["step"], p["value"]) for p in series] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]

    auto = sdk.registry.get_run(logged["sklearn"])  # mlflow.autolog() around a sklearn fit
    assert auto["params"]["max_iter"] == "300" and "training_score" in auto["metrics"]
    torch_run = sdk.registry.get_run(logged["torch"])
    series = sdk.registry.get_metric_series(logged["torch"], "train_loss")
    assert [p["step"] for p in series] == [0, 1, 2, 3, 4], [(p["step"], p["value"]) for p in series]
    assert torch_run["params"]["epochs"] == "5"


def test_artifacts_model_version_alias_and_lineage(logged: dict[str, Any], sdk: Client) -> None:
    names = {a["name"] for a in sdk.registry.list_artifacts(limit=1000)}
    assert any(n.endswith(f"{logged['manual']}/artifacts/reports/notes.txt") for n in names)
    version = sdk.registry.resolve("iris-torch@champion")
    assert version["version"] == logged["version"] and version["run_id"] == logged["torch"]
    assert version["framework"] == "mlflow" and "MLmodel" in version["artifacts"]
    assert "train_loss" in version["metrics"]
    graph = sdk.registry.lineage(f"model:iris-torch@{logged['version']}")
    assert ("run", logged["torch"]) in {(n["kind"], n["id"]) for n in graph["nodes"]}


def test_unsupported_calls_answer_mlflows_error_shape(logged: dict[str, Any],
                                                      server: tuple[Settings, str]) -> None:
    assert logged["unsupported"]["error_code"] == "NOT_IMPLEMENTED"
    assert "runs/delete" in logged["unsupported"]["message"]
    live, token = server
    r = httpx.post(f"{live.resolved_public_url}/api/v1/projects/alpha/mlflow/api/2.0/mlflow/runs/delete",
                   json={"run_id": logged["manual"]}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 501
    assert r.json()["error_code"] == "NOT_IMPLEMENTED" and "README" in r.json()["message"]
    r = httpx.get(f"{live.resolved_public_url}/api/v1/projects/alpha/mlflow/api/2.0/mlflow/runs/get",
                  params={"run_id": "run_nope"}, headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = httpx.get(f"{live.resolved_public_url}/api/v1/projects/alpha/mlflow/api/2.0/mlflow/runs/get",
                  params={"run_id": logged["manual"]})
    assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHENTICATED")
