"""The registry through the SDK (buffered metric logger, streamed artifacts) and the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelyard.core.errors import InvalidArgument, NotFound
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server


def test_metric_logger_sends_every_point_in_batches(client: Client) -> None:
    run = client.registry.create_run("sdk", params={"lr": 0.1})
    with client.registry.metric_logger(run["id"], batch_size=64, flush_interval_s=0) as logger:
        for step in range(500):
            logger.log_metric("loss", 1.0 / (step + 1), step)
            logger.log_metric("acc", step / 500)  # step counted per key
    loss = client.registry.get_metric_series(run["id"], "loss")
    acc = client.registry.get_metric_series(run["id"], "acc")
    assert [p["step"] for p in loss] == list(range(500))
    assert [p["step"] for p in acc] == list(range(500))
    assert client.registry.get_run(run["id"])["metrics"]["loss"] == pytest.approx(1 / 500)


def test_metric_logger_buffers_points_and_sends_them_in_few_bulk_requests(
        api: TestClient, client: Client) -> None:
    run = client.registry.create_run("sdk")
    sent: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith(f"/runs/{run['id']}/metrics"):
            sent.append(request.url.path)

    api.event_hooks = {"request": [count], "response": []}
    logger = client.registry.metric_logger(run["id"], batch_size=100, flush_interval_s=0)
    for step in range(99):
        logger.log_metric("loss", 1.0 / (step + 1), step)
    assert sent == [] and logger.pending == 99  # buffered, nothing sent yet
    assert client.registry.get_metric_series(run["id"], "loss") == []
    logger.log_metric("loss", 0.01, 99)  # the 100th point fills the batch
    assert len(sent) == 1 and logger.pending == 0
    for step in range(100, 1050):
        logger.log_metric("loss", 0.01, step)
    logger.close()  # sends the last 50
    assert len(sent) == 11  # 1,050 points in 11 requests, not 1,050
    series = client.registry.get_metric_series(run["id"], "loss")
    assert [p["step"] for p in series] == list(range(1050))


def test_metric_logger_flushes_on_its_timer(client: Client) -> None:
    run = client.registry.create_run("sdk")
    logger = client.registry.metric_logger(run["id"], batch_size=10_000, flush_interval_s=0.05)
    try:
        logger.log_metric("loss", 0.5, 0)
        deadline = time.monotonic() + 10
        while not client.registry.get_metric_series(run["id"], "loss"):
            assert time.monotonic() < deadline, "the timer never flushed"
            time.sleep(0.02)
    finally:
        logger.close()
    assert len(client.registry.get_metric_series(run["id"], "loss")) == 1


def test_metric_logger_reports_a_failed_flush_and_keeps_the_points(client: Client) -> None:
    logger = client.registry.metric_logger("run_missing", batch_size=2, flush_interval_s=0)
    logger.log_metric("loss", 1.0)
    with pytest.raises(NotFound):
        logger.log_metric("loss", 0.9)
    assert logger.pending == 2  # kept for a retry


def test_upload_a_file_and_download_it_back(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"\x08\x01" * 300_000)
    art = client.registry.upload_artifact(src, media_type="application/onnx")
    assert art["name"] == "model.onnx" and art["size"] == 600_000
    assert client.registry.upload_artifact(src.read_bytes())["digest"] == art["digest"]
    out = client.registry.download_artifact(art["digest"], tmp_path / "copy.onnx")
    assert Path(out).read_bytes() == src.read_bytes()
    assert client.registry.artifact_info(art["digest"])["media_type"] == "application/onnx"


def test_register_alias_resolve_and_lineage_through_the_sdk(client: Client) -> None:
    run = client.registry.create_run("sdk", params={"lr": 0.2}, job_id="job_9", code_hash="c9",
                                     dataset_snapshot="snap_9")
    art = client.registry.upload_artifact(b"onnx-model", name="model.onnx")
    v1 = client.registry.register_version("digits", {"model.onnx": art["digest"]},
                                          run_id=run["id"], metrics={"acc": 0.97})
    client.registry.register_version("digits", {"model.onnx": art["digest"]})
    assert v1["version"] == 1 and v1["params"] == {"lr": 0.2}
    client.registry.set_alias("digits", "production", 1)
    assert client.registry.resolve("digits@production")["version"] == 1
    assert client.registry.resolve("digits")["version"] == 2
    with pytest.raises(InvalidArgument):
        client.registry.resolve("digits@@")
    graph = client.registry.lineage("model:digits@1")
    assert {"run", "job", "code", "dataset_snapshot"} <= {n["kind"] for n in graph["nodes"]}
    assert client.registry.is_referenced("dataset_snapshot:snap_9")
    assert [r["id"] for r in client.registry.iter_runs("params.lr = 0.2", page_size=1)] == [run["id"]]


def test_cli_lists_models_moves_aliases_and_prints_lineage(settings: Settings) -> None:
    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token=token, project="alpha") as c:
            c.create_project("alpha")
            run = c.registry.create_run("cli", params={"lr": 0.3}, job_id="job_cli",
                                        code_hash="code_cli", dataset_snapshot="snap_cli")
            art = c.registry.upload_artifact(b"weights", name="model.onnx")
            for _ in range(3):
                c.registry.register_version("digits", {"model.onnx": art["digest"]},
                                            run_id=run["id"])
        from modelyard.cli.main import app

        base = ["--url", live.resolved_public_url, "--token", token, "--project", "alpha"]
        runner = CliRunner()
        moved = runner.invoke(app, [*base, "model", "alias", "digits", "production", "3"])
        assert moved.exit_code == 0, moved.output
        listed = runner.invoke(app, [*base, "model", "list"])
        assert "digits" in listed.output and "production" in listed.output
        versions = runner.invoke(app, [*base, "model", "versions", "digits"])
        assert versions.exit_code == 0 and "production" in versions.output
        resolved = runner.invoke(app, [*base, "model", "resolve", "digits@production"])
        assert "digits@3" in resolved.output
        tree = runner.invoke(app, [*base, "lineage", "model:digits@3"], terminal_width=200)
        assert tree.exit_code == 0, tree.output
        for expected in ("model_version digits@3", "dataset_snapshot snap_cli", "code code_cli",
                         "job job_cli", "lr"):
            assert expected in tree.output
