"""Every component's migrations, applied together, produce exactly the ORM tables.

This catches drift in any component: a column added to `tables.py` without a migration, a
nullable flag, an index or a unique constraint that differs between the two.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from modelyard.core.db import MIGRATING_PACKAGES, Base, Database
from tests._servers.databases import BACKENDS, fresh_database


def _import_all_tables() -> list[str]:
    found = []
    for pkg in MIGRATING_PACKAGES:
        name = f"{pkg}.tables"
        if importlib.util.find_spec(pkg) is not None and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            found.append(name)
    return found


@pytest.fixture(params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path) as db:
        yield db


def test_migrations_match_the_orm_tables(migrated: Database) -> None:
    modules = _import_all_tables()
    assert "modelyard.server.tables" in modules
    with migrated.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], "migrations and tables.py disagree:\n" + "\n".join(map(repr, diff))


def test_every_component_is_at_its_newest_revision(migrated: Database) -> None:
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(migrated.alembic_config()).get_heads())
    with migrated.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    assert "server_0001" in heads or any(h.startswith("server_") for h in heads)
    assert current == heads


def test_migrate_twice_is_a_no_op(migrated: Database) -> None:
    before = sorted(sa.inspect(migrated.engine).get_table_names())
    migrated.migrate()
    assert sorted(sa.inspect(migrated.engine).get_table_names()) == before
    assert "projects" in before and "api_tokens" in before
