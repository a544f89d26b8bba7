"""Helpers shared by the SQL store modules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelyard.core.db import Database
from modelyard.registry.models import LineageEdge
from modelyard.registry.tables import EdgeRow


class SqlBase:
    db: Database


def upsert(session: Session, table: Any) -> Any:
    """An INSERT with ON CONFLICT support for the session's dialect (SQLite or PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the registry supports SQLite and PostgreSQL, not {name}")


def insert_edges(session: Session, project: str, edges: list[LineageEdge], now: Any) -> None:
    if not edges:
        return
    rows = [{"project": project, "src_kind": e.src_kind, "src_id": e.src_id, "dst_kind": e.dst_kind,
             "dst_id": e.dst_id, "relation": e.relation, "created_at": now} for e in edges]
    session.execute(upsert(session, EdgeRow.__table__).values(rows).on_conflict_do_nothing())


def point_edges_at(edges: list[LineageEdge], kind: str, node_id: str) -> list[LineageEdge]:
    """Edges whose empty dst id stands for the object being created get its id."""
    return [e.model_copy(update={"dst_id": node_id}) if e.dst_kind == kind and not e.dst_id else e
            for e in edges]


def compare(column: Any, op: str, value: Any) -> Any:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "like":
        return column.like(value)
    raise ValueError(op)


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


__all__ = ["SqlBase", "chunks", "compare", "insert_edges", "point_edges_at", "sa", "upsert"]
