"""A registry service on each metadata backend (SQLite always, PostgreSQL as integration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.blobs import ContentStore, LocalBlobStore
from modelyard.registry.service import RegistryService
from tests._servers.databases import BACKENDS, fresh_database


def blob_files(root: Path) -> list[Path]:
    """The content-addressed objects stored under a local blob root."""
    cas = root / "cas"
    return [p for p in cas.rglob("*") if p.is_file()] if cas.exists() else []


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryService]:
    with fresh_database(request, tmp_path) as db:
        yield RegistryService(db, ContentStore(LocalBlobStore(tmp_path / "blobs")))


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"
