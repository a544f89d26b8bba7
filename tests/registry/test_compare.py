"""Issue 21 item 4: runs side by side (API and `modelyard run`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelyard.core.errors import InvalidArgument, NotFound
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server


def _two_runs(c: Client) -> tuple[str, str]:
    a = c.registry.create_run("cmp", params={"lr": 0.1, "layers": 2})
    b = c.registry.create_run("cmp", params={"lr": 0.2, "layers": 2, "dropout": 0.5})
    c.registry.log_metrics(a["id"], [("acc", 1, 0.5), ("acc", 2, 0.9), ("acc", 3, 0.8)])
    c.registry.log_metrics(b["id"], [("loss", 1, 2.0)])
    return a["id"], b["id"]


def test_compare_shows_differing_params_and_metric_summaries(client: Client) -> None:
    a, b = _two_runs(client)
    out = client.registry.compare_runs([a, b])
    assert out["params"] == {"dropout": [None, 0.5], "layers": [2, 2], "lr": [0.1, 0.2]}
    assert out["differing_params"] == ["dropout", "lr"]
    assert out["metrics"]["acc"] == [{"last": 0.8, "min": 0.5, "max": 0.9, "steps": 3}, None]
    assert out["metrics"]["loss"][1]["last"] == 2.0
    with pytest.raises(InvalidArgument):
        client.registry.compare_runs([a, a])
    with pytest.raises(NotFound):
        client.registry.compare_runs([a, "run_nosuch"])


def test_cli_run_list_show_compare(settings: Settings) -> None:
    from modelyard.cli.main import app

    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        with Client(live.resolved_public_url, token=token, project="alpha") as c:
            c.create_project("alpha")
            a, b = _two_runs(c)
        base = ["--url", live.resolved_public_url, "--token", token, "--project", "alpha"]
        runner = CliRunner()
        listed = runner.invoke(app, ["--json", *base, "run", "list", "--filter",
                                     "params.lr = 0.2"])
        assert listed.exit_code == 0, listed.output
        assert b in listed.output and a not in listed.output
        shown = runner.invoke(app, [*base, "run", "show", a], terminal_width=200)
        assert shown.exit_code == 0 and "0.1" in shown.output
        cmp = runner.invoke(app, [*base, "run", "compare", a, b], terminal_width=200)
        assert cmp.exit_code == 0, cmp.output
        assert "*lr" in cmp.output and "0.8 / 0.5 / 0.9" in cmp.output
