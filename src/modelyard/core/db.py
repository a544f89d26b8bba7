"""SQLAlchemy engine, sessions and Alembic migrations.

SQLite (WAL) by default, PostgreSQL by URL. Every component keeps its tables in its own
Alembic branch (`<component>/migrations/`, branch label = component name), so components
migrate independently and `upgrade heads` brings every one to its newest schema.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from modelyard.core.errors import AlreadyExists, ModelyardError, Unavailable
from modelyard.core.private import private_dir, private_file, private_files

# Components that own tables, in no particular order: each has `migrations/` beside it.
MIGRATING_PACKAGES = (
    "modelyard.server",
    "modelyard.datasets",
    "modelyard.training",
    "modelyard.hpo",
    "modelyard.registry",
    "modelyard.serving",
    "modelyard.workflows",
    "modelyard.metrics",
    "modelyard.mlflow_compat",
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _migration_dirs() -> list[str]:
    dirs = []
    for pkg in MIGRATING_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / "migrations"
        if path.is_dir():
            dirs.append(str(path))
    return dirs


class Database:
    """An engine plus a session factory; `session()` is the one place DB errors are translated."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        self._lock_dir: Path | None = None
        self._memory_locks: dict[int, threading.Lock] = {}
        if self.is_sqlite:
            if url not in ("sqlite://", "sqlite:///:memory:"):
                path = url.split("sqlite:///", 1)[1].split("?", 1)[0]
                # The database file is made 0600 before SQLite opens it: SQLite gives its
                # -wal and -shm files the database file's mode, whatever the umask.
                private_dir(Path(path).parent, tighten_existing=False)
                private_file(Path(path))
                private_files(Path(path + "-wal"), Path(path + "-shm"))
                self._lock_dir = Path(path + ".locks")
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except ModelyardError:
            s.rollback()
            raise
        except exc.IntegrityError as e:
            s.rollback()
            raise AlreadyExists(
                "the object conflicts with one that already exists (unique key or reference)",
                {"db": str(e.orig)[:300]},
            ) from e
        except exc.OperationalError as e:
            s.rollback()
            raise Unavailable("the metadata database is unavailable; retry shortly",
                              {"db": str(e.orig)[:300]}) from e
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("version_locations", " ".join(_migration_dirs()))
        cfg.set_main_option("path_separator", "space")
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def migrate(self, target: str = "heads") -> None:
        """Bring every component's schema to its newest revision (or only `target`, e.g.
        `"training@head"` for one component's branch)."""
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Held by one caller at a time across every process using this database: a PostgreSQL
        advisory lock, or on SQLite an flock'd file beside the database (SQLite is one machine
        by nature). For work outside the database that must not interleave, e.g. one dataset's
        Lance commits, which take seconds and must not hold a database transaction open."""
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        if not self.is_sqlite:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
            return
        if self._lock_dir is None:  # an in-memory database lives in this process only
            with self._memory_locks.setdefault(key, threading.Lock()):
                yield
            return
        private_dir(self._lock_dir)
        with open(self._lock_dir / f"{key & (2**64 - 1):016x}.lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # blocks; released by the kernel if we die
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
