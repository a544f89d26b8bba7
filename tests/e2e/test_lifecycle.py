"""The demo lifecycle end to end through a live server: every component meets the next."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.demo import run_lifecycle
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server

pytestmark = pytest.mark.e2e


def test_digits_lifecycle_from_data_to_monitored_predictions(tmp_path: Path) -> None:
    with embedded_server(Settings(home=tmp_path / "home")) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token, project="demo") as client:
            out = run_lifecycle(client)["raw"]

            assert out["val_accuracy"] > 0.9
            assert out["served_accuracy"] > 0.9
            assert out["requests_recorded"] >= 20  # 20 predict calls of 10 images
            assert out["latency_p50_ms"] > 0

            # From a live prediction's model version back to the data, code and job that made it.
            pred = client.serving.predict("digits", [[[0.0] * 8] * 8])
            mv = client.registry.get_version("digits-cnn", pred["model_version"])
            graph = client.registry.lineage(f"model_version:digits-cnn@{mv['version']}", depth=5)
            nodes = {(n["kind"], n["id"]) for n in graph["nodes"]}
            job = client.training.get(mv["job_id"])
            assert job["state"] == "succeeded"
            assert ("job", job["id"]) in nodes
            assert ("dataset_snapshot", job["dataset_snapshot"]) in nodes
            assert ("code", job["code_hash"]) in nodes
            assert mv["dataset_snapshot_id"] == job["dataset_snapshot"]
            for key, value in job["hyperparameters"].items():  # the hyperparameters that made it
                assert mv["params"][key] == value
            snap = client.datasets.get_snapshot(job["dataset_snapshot"])
            assert snap["status"] == "ready" and snap["dataset"] == "digits"

            run = out["pipeline_run"]
            assert run["state"] == "succeeded"
            assert all(s["state"] in ("succeeded", "cached") for s in run["steps"])
