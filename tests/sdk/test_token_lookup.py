"""Where the SDK and CLI find a token when none is given, and what they say when none is found."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import Unauthenticated
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.cli.runner import run


@pytest.fixture
def no_token_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $MODELYARD_TOKEN, $MODELYARD_HOME an empty dir, $HOME another: returns $HOME."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HOME", str(home))
    return home


def test_the_admin_token_is_found_in_the_default_home_too(api: TestClient, settings: Settings,
                                                         no_token_env: Path) -> None:
    (no_token_env / ".modelyard").mkdir()
    shutil.copy(settings.resolved_admin_token_file, no_token_env / ".modelyard" / "admin-token")
    assert Client(http=api).list_projects() == []


def test_without_a_token_the_error_says_where_it_looked(api: TestClient, tmp_path: Path,
                                                        no_token_env: Path) -> None:
    with pytest.raises(Unauthenticated) as e:
        Client(http=api).list_projects()
    text = e.value.message
    assert "MODELYARD_TOKEN" in text
    assert str(tmp_path / "elsewhere" / "admin-token") in text
    assert str(no_token_env / ".modelyard" / "admin-token") in text
    assert e.value.details["looked_in"][0] == "$MODELYARD_TOKEN"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with live_server(Settings(home=tmp_path / "srv", background=False)) as live:
        yield live.resolved_public_url


def test_the_cli_says_where_it_looked(server: str, tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    out = run(["project", "list"], {"MODELYARD_URL": server, "MODELYARD_TOKEN": None,
                                    "MODELYARD_HOME": None, "HOME": str(home)})
    assert out.code == 1 and "Traceback" not in out.stderr
    assert "MODELYARD_TOKEN" in out.err_text and ".modelyard/admin-token" in out.err_text
