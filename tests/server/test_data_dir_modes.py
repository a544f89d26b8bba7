"""The data dir is the server's alone: 0700, and its database, metrics and token files 0600,
whatever the umask of whoever started the server."""

from __future__ import annotations

import io
import logging
import os
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.server.app import create_app
from tests.conftest import bearer


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o000)  # what a careless service manager may hand the server
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _package() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "print('hi')\n")
    return buf.getvalue()


def _use_everything(api: TestClient, settings: Settings) -> None:
    """Writes through the API what makes each file: metadata, blobs, metrics, HPO storage."""
    h = bearer(settings.resolved_admin_token_file.read_text().strip())
    assert api.post("/api/v1/projects", json={"name": "alpha"}, headers=h).status_code == 201
    code = api.post("/api/v1/projects/alpha/training/code", content=_package(), headers=h)
    assert code.status_code == 201, code.text
    event = {"deployment": "d", "model": "m", "version": 1, "latency_ms": 3.0,
             "request_id": "r1", "time": datetime.now(UTC).isoformat()}
    r = api.post("/api/v1/projects/alpha/metrics/events", json={"events": [event]}, headers=h)
    assert r.status_code < 300, r.text
    platform = api.app.state.platform  # type: ignore[attr-defined]
    platform.hpo.controller.storage  # noqa: B018 - opens Optuna's own SQLite file


def test_a_fresh_data_dir_is_private_even_under_a_permissive_umask(
        tmp_path: Path, permissive_umask: None, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path / "a" / "home", background=False)
    with caplog.at_level(logging.WARNING, logger="modelyard.security"), \
            TestClient(create_app(settings), raise_server_exceptions=False) as api:
        _use_everything(api, settings)
        assert not [r for r in caplog.records if r.name == "modelyard.security"]  # no alarm
        home = settings.home
        files = [home / "modelyard.db", home / "modelyard.db-wal", home / "modelyard.db-shm",
                 home / "metrics" / "events.duckdb", home / "metrics" / "events.duckdb.wal",
                 home / "hpo" / "optuna.db", settings.resolved_admin_token_file]
        for f in files:
            assert f.exists(), f  # each was made (the WAL files while the server is up)
        assert {str(f): oct(_mode(f)) for f in files} == {str(f): "0o600" for f in files}
        dirs = [home, home / "blobs", home / "metrics", home / "hpo", tmp_path / "a"]
        assert {str(d): oct(_mode(d)) for d in dirs} == {str(d): "0o700" for d in dirs}


def test_a_data_dir_left_open_is_closed_at_start_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path / "home", background=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        _use_everything(api, settings)
    home = settings.home
    opened = [home, home / "blobs", home / "modelyard.db", settings.resolved_admin_token_file,
              home / "metrics" / "events.duckdb"]
    for p in opened:
        p.chmod(0o755 if p.is_dir() else 0o644)
    with caplog.at_level(logging.WARNING, logger="modelyard.security"):
        with TestClient(create_app(settings), raise_server_exceptions=False) as api:
            _use_everything_again(api, settings)
    assert {str(p): oct(_mode(p)) for p in opened} == {
        str(p): "0o700" if p.is_dir() else "0o600" for p in opened}
    warned = caplog.text
    assert all(str(p) in warned for p in opened), warned


def _use_everything_again(api: TestClient, settings: Settings) -> None:
    h = bearer(settings.resolved_admin_token_file.read_text().strip())
    event = {"deployment": "d", "model": "m", "version": 1, "latency_ms": 3.0,
             "request_id": "r2", "time": datetime.now(UTC).isoformat()}
    r = api.post("/api/v1/projects/alpha/metrics/events", json={"events": [event]}, headers=h)
    assert r.status_code < 300, r.text
