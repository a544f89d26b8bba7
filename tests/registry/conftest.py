"""A registry service on each metadata backend (SQLite always, PostgreSQL as integration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.blobs import ContentStore, LocalBlobStore
from modelyard.core.db import Database
from modelyard.registry.service import RegistryService


def blob_files(root: Path) -> list[Path]:
    """The content-addressed objects stored under a local blob root."""
    cas = root / "cas"
    return [p for p in cas.rglob("*") if p.is_file()] if cas.exists() else []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryService]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        from tests._servers.postgres import reset_database

        url = request.getfixturevalue("postgres_url")
        reset_database(url)
    db = Database(url)
    db.migrate()
    svc = RegistryService(db, ContentStore(LocalBlobStore(tmp_path / "blobs")))
    try:
        yield svc
    finally:
        db.dispose()


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"
