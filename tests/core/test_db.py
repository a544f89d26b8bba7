"""Sessions are transactions; database errors come out as modelyard errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import utcnow
from modelyard.server.tables import ProjectRow


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'nested' / 'db.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def _project(name: str) -> ProjectRow:
    return ProjectRow(id=f"prj_{name}", name=name, description="", created_at=utcnow(),
                      created_by="t")


def _names(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(sa.select(ProjectRow.name).order_by(ProjectRow.name)))


def test_session_commits_when_the_block_ends(db: Database) -> None:
    with db.session() as s:
        s.add(_project("a"))
    assert _names(db) == ["a"]


def test_session_rolls_back_on_any_error(db: Database) -> None:
    with pytest.raises(NotFound), db.session() as s:
        s.add(_project("a"))
        s.flush()
        raise NotFound("stop half way")
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(_project("b"))
        s.flush()
        raise RuntimeError("boom")
    assert _names(db) == []


def test_unique_violation_becomes_already_exists_and_stores_nothing(db: Database) -> None:
    with db.session() as s:
        s.add(_project("a"))
    with pytest.raises(AlreadyExists, match="conflicts"), db.session() as s:
        s.add(_project("b"))
        s.add(ProjectRow(id="prj_other", name="a", description="", created_at=utcnow(),
                         created_by="t"))
    assert _names(db) == ["a"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
