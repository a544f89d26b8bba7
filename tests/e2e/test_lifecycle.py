"""`modelyard demo` end to end, through its real entry point: every component meets the next.

The command runs the lifecycle against an embedded server it starts, prints its summary and
exits 0; the test then starts a server on the demo's kept data dir and walks from a live
prediction's model version back to the data, code, hyperparameters and job that made it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server
from tests.cli.runner import run

pytestmark = pytest.mark.e2e


def _row(summary: str, label: str) -> str:
    """The value cell of one row of the demo's summary table."""
    m = re.search(rf"│ {re.escape(label)}\s*│ (.+?)\s*│", summary)
    assert m, f"the summary has no row {label!r}:\n{summary}"
    return m.group(1)


def test_demo_command_runs_the_lifecycle_and_leaves_it_traceable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = run(["demo", "--home", str(home), "--keep"], {})
    assert demo.code == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    summary = demo.stdout
    assert re.fullmatch(r"digits v\d+ \(1797 rows\)", _row(summary, "dataset"))
    assert re.fullmatch(r"job_\w+", _row(summary, "job"))
    assert float(_row(summary, "validation accuracy")) > 0.9
    assert re.fullmatch(r"digits-cnn@\d+", _row(summary, "model version"))
    assert re.fullmatch(r"\d \(confidence [01]\.\d\d, truth \d\)", _row(summary, "a prediction"))
    assert float(_row(summary, "served accuracy (200 dataset images)")) > 0.9
    p50 = re.fullmatch(r"([0-9.]+) ms", _row(summary, "request latency p50 (server)"))
    assert p50 and float(p50.group(1)) > 0
    assert float(_row(summary, "predictions recorded")) == 200  # 20 requests of 10 images
    assert "succeeded (10 steps)" in summary

    with embedded_server(Settings(home=home)) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token, project="demo") as client:
            # From a live prediction's model version back to what made it.
            pred = client.serving.predict("digits", [[[0.0] * 8] * 8])
            mv = client.registry.get_version("digits-cnn", pred["model_version"])
            graph = client.registry.lineage(f"model_version:digits-cnn@{mv['version']}", depth=5)
            nodes = {(n["kind"], n["id"]) for n in graph["nodes"]}
            job = client.training.get(mv["job_id"])
            assert job["state"] == "succeeded" and job["code_hash"]
            assert ("job", job["id"]) in nodes
            assert ("dataset_snapshot", job["dataset_snapshot"]) in nodes
            assert ("code", job["code_hash"]) in nodes
            assert ("run", mv["run_id"]) in nodes
            assert mv["dataset_snapshot_id"] == job["dataset_snapshot"]
            assert mv["code_hash"] == job["code_hash"]
            # the hyperparameters that made it (the pipeline's retrain serves by now)
            assert "epochs" in job["hyperparameters"]
            run_node = next(n for n in graph["nodes"] if n["kind"] == "run")
            for key, value in job["hyperparameters"].items():
                assert mv["params"][key] == value
                assert run_node["attrs"]["params"][key] == value
            snap = client.datasets.get_snapshot(job["dataset_snapshot"])
            assert snap["status"] == "ready" and snap["dataset"] == "digits"
            # ... back to the dataset version (the commit) the snapshot pinned
            assert ("dataset_version", f"digits@{snap['version']}") in nodes
            # and forward, from the model version to the deployment that serves it
            down = client.registry.lineage(f"model_version:digits-cnn@{mv['version']}",
                                           direction="downstream", depth=1)
            deployment = client.serving.get("digits")
            assert ("deployment", deployment["id"]) in {(n["kind"], n["id"])
                                                        for n in down["nodes"]}
