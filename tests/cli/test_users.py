"""`modelyard user ...` against a live server: grant the right to create projects, list and
revoke another user's tokens as a superuser."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from modelyard.core.settings import Settings
from tests._servers.live import live_server
from tests.cli.runner import run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    settings = Settings(home=tmp_path_factory.mktemp("cli-users") / "home", background=False)
    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        yield {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": None}


def test_a_superuser_grants_project_creation_and_revokes_a_users_token(
        server: dict[str, str | None]) -> None:
    made = run(["--json", "project", "create-user", "uma"], server)
    assert made.code == 0, made.stderr
    uma = {**server, "MODELYARD_TOKEN": json.loads(made.stdout)["token"]}

    refused = run(["project", "create", "umas"], uma)
    assert refused.code == 1 and "permission_denied" in refused.err_text
    assert "modelyard user grant" in refused.err_text
    granted = run(["--json", "user", "grant", "uma", "--create-projects"], server)
    assert granted.code == 0, granted.stderr
    assert json.loads(granted.stdout)["can_create_projects"] is True
    assert run(["project", "create", "umas"], uma).code == 0

    listed = run(["--json", "user", "tokens", "--user", "uma"], server)
    assert listed.code == 0, listed.stderr
    tokens = json.loads(listed.stdout)
    assert [t["name"] for t in tokens] == ["initial"] and "myd_" not in listed.stdout
    assert run(["user", "tokens", "--user", "admin"], uma).code == 1  # not uma's to see

    revoked = run(["user", "revoke-token", tokens[0]["id"], "--user", "uma"], server)
    assert revoked.code == 0, revoked.stderr
    after = run(["project", "whoami"], uma)
    assert after.code == 1 and "unauthenticated" in after.err_text
