"""One typed Settings object: defaults under the data dir, overrides from MODELYARD_ variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.core.blobs import LocalBlobStore, open_blob_store
from modelyard.core.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MODELYARD_"):
            monkeypatch.delenv(key)


def test_everything_lives_under_home_by_default(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'modelyard.db'}"
    assert s.resolved_blob_root == tmp_path / "blobs"
    assert s.resolved_admin_token_file == tmp_path / "admin-token"
    assert s.resolved_public_url == "http://127.0.0.1:8600"


def test_home_comes_from_modelyard_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "h"))
    assert Settings().home == tmp_path / "h"


def test_environment_overrides_nested_sections(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", "postgresql+psycopg://u@db:5432/m")
    monkeypatch.setenv("MODELYARD_PORT", "9000")
    monkeypatch.setenv("MODELYARD_BLOBS__BACKEND", "s3")
    monkeypatch.setenv("MODELYARD_BLOBS__S3_BUCKET", "models")
    monkeypatch.setenv("MODELYARD_API__MAX_BODY_BYTES", "1234")
    s = Settings(home=tmp_path)
    assert s.resolved_database_url == "postgresql+psycopg://u@db:5432/m"
    assert s.port == 9000 and s.resolved_public_url == "http://127.0.0.1:9000"
    assert (s.blobs.backend, s.blobs.s3_bucket) == ("s3", "models")
    assert s.api.max_body_bytes == 1234


def test_blob_backend_is_chosen_by_settings(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(Settings(home=tmp_path)), LocalBlobStore)
    s3_without_bucket = Settings(home=tmp_path, blobs={"backend": "s3"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="S3_BUCKET"):
        open_blob_store(s3_without_bucket)
    with pytest.raises(ValueError, match="unknown blob backend"):
        open_blob_store(Settings(home=tmp_path, blobs={"backend": "ftp"}))  # type: ignore[arg-type]


def test_bad_value_is_rejected_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("MODELYARD_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_the_backfill_window_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().training.backfill_window_s == 300
    monkeypatch.setenv("MODELYARD_TRAINING__BACKFILL_WINDOW_S", "30")
    assert Settings().training.backfill_window_s == 30
