"""A fresh, migrated metadata database per test, on SQLite and on a real PostgreSQL.

    @pytest.fixture(params=BACKENDS)
    def db(request, tmp_path):
        with fresh_database(request, tmp_path, "training@head") as database:
            yield database
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelyard.core.db import Database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@contextmanager
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path,
                   target: str = "heads") -> Iterator[Database]:
    """An empty database of `request.param`'s backend, migrated to `target`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests._servers.postgres import reset_database

        url = request.getfixturevalue("postgres_url")
        reset_database(url)
    database = Database(url)
    database.migrate(target)
    try:
        yield database
    finally:
        database.dispose()
