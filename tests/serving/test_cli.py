"""`modelyard deploy ...` and `modelyard metrics query` against a live server."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.serving._digits import digits, expected_labels
from tests.serving.conftest import DigitsModel


def test_deploy_predict_traffic_and_metrics_from_the_command_line(
        settings: Settings, api: TestClient, client: Client, admin_token: str,
        digits_model: DigitsModel) -> None:
    runner = CliRunner()
    pixels = digits().test_x[:3]
    with live_server(settings) as live:
        base = ["--url", live.resolved_public_url, "--token", admin_token, "-p", "alpha"]

        def run(*args: str) -> str:
            result = runner.invoke(app, [*base, *args], env={"COLUMNS": "200"})
            assert result.exit_code == 0, result.output
            return result.output

        run("deploy", "create", "digits", "digits@production", "--max-batch-size", "16")
        assert "digits@production" in run("deploy", "list")
        out = json.loads(run("--json", "deploy", "predict", "digits",
                             json.dumps(pixels.tolist())))
        assert [r["label"] for r in out] == expected_labels(digits_model.c1, pixels)
        shown = json.loads(run("--json", "deploy", "traffic", "digits", "1=70", "2=30"))
        assert shown["traffic"] == {"1": 70, "2": 30}
        assert '"max_batch_size": 16' in run("--json", "deploy", "show", "digits")
        table = run("metrics", "query", "count", "--since", "10m", "--step", "600",
                    "--group-by", "deployment")
        assert "deployment=digits" in table and "3" in table
        drawn = run("metrics", "query", "count", "--since", "5m", "--step", "60",
                    "--group-by", "deployment", "--chart")
        assert "count per 60s" in drawn and "deployment=digits" in drawn
        assert "\x1b[" not in drawn  # colour codes are rendered, not printed
        points = json.loads(run("--json", "metrics", "query", "count", "--since", "5m",
                                "--step", "60", "--group-by", "deployment"))["series"][0]["points"]
        when = [p["time"][11:16] for p in points if p["value"]]
        assert when and when[0] in drawn  # the x axis is labelled where the requests were
        bad = runner.invoke(app, [*base, "deploy", "traffic", "digits", "1=50"])
        assert bad.exit_code != 0
