"""Fixtures shared by every test: an app on a fresh data dir, tokens of each role, servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.app import create_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _bubblewrap() -> None:
    """Jobs in tests run sandboxed, as on a team install: bring bubblewrap when it is missing."""
    from tests._servers.apt import ensure_binary

    ensure_binary("bwrap", "bubblewrap")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on an empty data dir; background loops off unless a test turns them on."""
    return Settings(home=tmp_path / "home", background=False)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The whole app in-process (lifespan run), no auth header set."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin_token(api: TestClient, settings: Settings) -> str:
    return settings.resolved_admin_token_file.read_text().strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Team:
    """Two projects, `alpha` and `beta`; in `alpha` one token of each role, in `beta` an admin."""

    admin: str  # server superuser
    viewer: str
    editor: str
    owner: str  # admin of alpha
    outsider: str  # admin of beta, nothing in alpha


@pytest.fixture
def team(api: TestClient, admin_token: str) -> Team:
    h = bearer(admin_token)
    assert api.post("/api/v1/projects", json={"name": "alpha"}, headers=h).status_code == 201
    assert api.post("/api/v1/projects", json={"name": "beta"}, headers=h).status_code == 201
    tokens = {}
    for user, project, role in [("vic", "alpha", "viewer"), ("eve", "alpha", "editor"),
                                ("ada", "alpha", "admin"), ("bob", "beta", "admin")]:
        made = api.post("/api/v1/users", json={"name": user}, headers=h)
        assert made.status_code == 201, made.text
        tokens[user] = made.json()["token"]
        r = api.put(f"/api/v1/projects/{project}/members", json={"user": user, "role": role},
                    headers=h)
        assert r.status_code == 200, r.text
    return Team(admin=admin_token, viewer=tokens["vic"], editor=tokens["eve"],
                owner=tokens["ada"], outsider=tokens["bob"])


@pytest.fixture
def client(api: TestClient, admin_token: str) -> Client:
    """The SDK over the in-process app, as the superuser, default project `alpha` (created)."""
    c = Client(token=admin_token, project="alpha", http=api)
    c.create_project("alpha")
    return c


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from tests._servers.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from tests._servers.moto import moto_server

    with moto_server() as url:
        yield url
