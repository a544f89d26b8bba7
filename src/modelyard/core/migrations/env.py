"""Alembic environment: runs against the connection handed in by `Database.migrate()`."""

from __future__ import annotations

from alembic import context

from modelyard.core.db import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used by `alembic` run by hand
    import sqlalchemy as sa

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (the database to migrate) in alembic.ini")
    connection = sa.create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
