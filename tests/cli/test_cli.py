"""The `modelyard` command against a live server: output on success, message and exit 1 on error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from modelyard.core.settings import Settings
from tests._servers.live import live_server
from tests._servers.ports import free_port
from tests.cli.runner import run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    settings = Settings(home=tmp_path_factory.mktemp("cli") / "home", background=False)
    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        yield {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": None}


def test_create_and_list_projects(server: dict[str, str | None]) -> None:
    made = run(["project", "create", "gamma", "--description", "from the cli"], server)
    assert made.code == 0, made.stderr
    assert "gamma" in made.stdout
    listed = run(["--json", "project", "list"], server)
    assert listed.code == 0, listed.stderr
    assert "gamma" in [p["name"] for p in json.loads(listed.stdout)]


def test_whoami(server: dict[str, str | None]) -> None:
    out = run(["--json", "project", "whoami"], server)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["user"] == "admin"


def test_bad_input_exits_1_with_the_servers_message(server: dict[str, str | None]) -> None:
    out = run(["project", "create", "Bad Name"], server)
    assert out.code == 1
    assert "invalid_argument" in out.err_text
    assert "lowercase letters" in out.err_text
    assert "Traceback" not in out.stderr + out.stdout


def test_duplicate_exits_1(server: dict[str, str | None]) -> None:
    run(["project", "create", "delta"], server)
    out = run(["project", "create", "delta"], server)
    assert out.code == 1
    assert "already_exists" in out.err_text and "delta" in out.err_text


def test_bad_token_exits_1(server: dict[str, str | None]) -> None:
    out = run(["project", "list"], {**server, "MODELYARD_TOKEN": "myd_wrong"})
    assert out.code == 1
    assert "unauthenticated" in out.err_text
    assert "create a new one" in out.err_text


def test_unreachable_server_exits_1(server: dict[str, str | None]) -> None:
    out = run(["project", "list"], {**server, "MODELYARD_URL": f"http://127.0.0.1:{free_port()}"})
    assert out.code == 1
    assert "unavailable" in out.err_text and "cannot reach" in out.err_text


def test_usage_error_exits_non_zero(server: dict[str, str | None]) -> None:
    out = run(["project", "no-such-command"], server)
    assert out.code == 2
    assert "No such command" in out.stderr + out.stdout
