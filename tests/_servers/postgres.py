"""A throwaway PostgreSQL: initdb as user `postgres` in a temp dir, 127.0.0.1, a free port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests._servers.apt import apt_install
from tests._servers.ports import free_port, listening


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:  # initdb refuses root
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh, empty database; stops the server afterwards."""
    bindir = _bindir()
    if bindir is None:  # a bare machine: Debian's server package brings initdb and the user
        apt_install("postgresql")
        bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    tmp = tempfile.mkdtemp(prefix="modelyard-pg-")
    os.chmod(tmp, 0o777)
    data = os.path.join(tmp, "data")
    port = free_port()
    subprocess.run(
        _as_postgres([f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8"]),
        check=True, capture_output=True,
    )
    server = _as_postgres([f"{bindir}/postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port),
                           "-k", tmp, "-c", "fsync=off", "-c", "max_connections=200"])
    try:
        with listening(server, port):
            import psycopg

            for _ in range(50):
                try:
                    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres "
                                         "dbname=postgres", autocommit=True) as conn:
                        conn.execute("CREATE DATABASE modelyard")
                    break
                except psycopg.OperationalError:
                    time.sleep(0.1)
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/modelyard"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def reset_database(url: str) -> None:
    """Drop every schema a test made (Optuna keeps its own), leaving an empty `public`."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schemas = conn.execute(sa.text(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
            "AND nspname <> 'information_schema'")).scalars().all()
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
