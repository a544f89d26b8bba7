"""The SDK over the in-process app: typed calls, and server errors raised as the same classes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import (
    AlreadyExists,
    InvalidArgument,
    ModelyardError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from modelyard.sdk import Client
from tests._servers.ports import free_port
from tests.conftest import Team


def test_projects_round_trip(client: Client) -> None:
    assert client.get_project("alpha")["name"] == "alpha"
    client.create_project("beta", "second")
    assert [p["name"] for p in client.list_projects()] == ["alpha", "beta"]
    assert client.whoami()["is_superuser"] is True


def test_use_project_changes_the_default(client: Client) -> None:
    assert client.use_project("beta").project == "beta"


def test_missing_project_raises_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as info:
        client.get_project("nope")
    assert "nope" in info.value.message
    assert info.value.details == {"project": "nope"}
    assert info.value.status == 404


def test_duplicate_raises_already_exists(client: Client) -> None:
    with pytest.raises(AlreadyExists, match="pick another name"):
        client.create_project("alpha")


def test_bad_input_raises_invalid_argument(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="lowercase"):
        client.create_project("Not Valid")
    with pytest.raises(InvalidArgument, match="unknown role"):
        client.set_member("alpha", "admin", "overlord")


def test_bad_token_raises_unauthenticated(api: TestClient, client: Client) -> None:
    stranger = Client(token="myd_not-a-real-token", project="alpha", http=api)
    with pytest.raises(Unauthenticated, match="unknown, revoked or expired"):
        stranger.list_projects()


def test_role_errors_are_permission_denied(api: TestClient, team: Team) -> None:
    viewer = Client(token=team.viewer, project="alpha", http=api)
    assert viewer.get_project("alpha")["name"] == "alpha"
    with pytest.raises(PermissionDenied) as info:
        viewer.set_member("alpha", "vic", "admin")
    assert info.value.details["required"] == "admin"


def test_every_error_is_a_modelyard_error(client: Client) -> None:
    with pytest.raises(ModelyardError):
        client.get_project("nope")


def test_unreachable_server_raises_unavailable() -> None:
    with (Client(f"http://127.0.0.1:{free_port()}", token="myd_x", timeout=5) as c,
          pytest.raises(Unavailable, match="cannot reach the modelyard server")):
        c.list_projects()

