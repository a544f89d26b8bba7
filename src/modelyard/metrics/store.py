"""Persistence of prediction events and feedback.

Events live in one table of the metadata database, written by SQLAlchemy bulk inserts. Issue 9
may move raw events and rollups to an embedded columnar engine (DuckDB) once measured; the
`MetricsStore` contract below is what such a backend has to satisfy.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.metrics.models import EventColumns, Feedback, PredictionEvent
from modelyard.metrics.tables import MetricEventRow, MetricFeedbackRow

_EPOCH = datetime(1970, 1, 1)


class MetricsStore(abc.ABC):
    """Append-only events plus feedback keyed by request id. Thread safe."""

    @abc.abstractmethod
    def insert_events(self, events: list[PredictionEvent]) -> int:
        """Stores every event in one transaction (all or nothing); returns how many."""

    @abc.abstractmethod
    def upsert_feedback(self, project: str, feedback: list[Feedback]) -> int:
        """Stores true labels; a later label for the same request id replaces the earlier one."""

    @abc.abstractmethod
    def events(self, project: str, start: datetime, end: datetime, deployment: str | None,
               include_shadow: bool) -> EventColumns:
        """Events with `start <= time < end`, joined with their feedback label if any."""


    @abc.abstractmethod
    def input_means(self, project: str, deployment: str, start: datetime,
                    end: datetime) -> np.ndarray:
        """The `mean` of each ok, non-shadow event's input summary in `[start, end)`."""


class SqlMetricsStore(MetricsStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_events(self, events: list[PredictionEvent]) -> int:
        if not events:
            return 0
        rows = [
            {
                "project": e.project, "deployment": e.deployment, "model": e.model,
                "version": e.version, "time": e.time, "latency_ms": e.latency_ms,
                "outcome": e.outcome, "label": e.label, "confidence": e.confidence,
                "request_id": e.request_id, "shadow": e.shadow, "input_summary": e.input_summary,
            }
            for e in events
        ]
        with self.db.session() as s:
            s.execute(sa.insert(MetricEventRow), rows)
        return len(rows)

    def upsert_feedback(self, project: str, feedback: list[Feedback]) -> int:
        latest = {f.request_id: f for f in feedback}  # the last one sent wins
        with self.db.session() as s:
            existing = {
                r.request_id: r
                for r in s.scalars(
                    sa.select(MetricFeedbackRow).where(
                        MetricFeedbackRow.project == project,
                        MetricFeedbackRow.request_id.in_(list(latest)),
                    )
                )
            }
            for rid, f in latest.items():
                row = existing.get(rid)
                if row is None:
                    s.add(MetricFeedbackRow(project=project, request_id=rid, label=f.label,
                                            time=f.time))
                else:
                    row.label, row.time = f.label, f.time
        return len(latest)

    def events(self, project: str, start: datetime, end: datetime, deployment: str | None,
               include_shadow: bool) -> EventColumns:
        e, f = MetricEventRow, MetricFeedbackRow
        q = (
            sa.select(e.deployment, e.model, e.version, e.time, e.latency_ms, e.outcome, e.label,
                      f.label)
            .outerjoin(f, sa.and_(f.project == e.project, f.request_id == e.request_id))
            .where(e.project == project, e.time >= start, e.time < end)
        )
        if deployment is not None:
            q = q.where(e.deployment == deployment)
        if not include_shadow:
            q = q.where(e.shadow.is_(False))
        with self.db.session() as s:
            rows = s.execute(q).all()
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        times = np.array([(t - _EPOCH).total_seconds() for t in cols[3]], dtype=np.float64)
        return EventColumns(
            deployment=np.array(cols[0], dtype=object),
            model=np.array(cols[1], dtype=object),
            version=np.array(cols[2], dtype=np.int64),
            time_s=times,
            latency_ms=np.array(cols[4], dtype=np.float64),
            outcome=np.array(cols[5], dtype=object),
            label=np.array(cols[6], dtype=object),
            true_label=np.array(cols[7], dtype=object),
        )


    def input_means(self, project: str, deployment: str, start: datetime,
                    end: datetime) -> np.ndarray:
        e = MetricEventRow
        q = sa.select(e.input_summary).where(
            e.project == project, e.deployment == deployment, e.time >= start, e.time < end,
            e.outcome == "ok", e.shadow.is_(False))
        with self.db.session() as s:
            summaries: list[Any] = list(s.scalars(q).all())
        values = [x["mean"] for x in summaries
                  if isinstance(x, dict) and isinstance(x.get("mean"), (int, float))]
        return np.asarray(values, dtype=np.float64)


def to_epoch(t: datetime) -> float:
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return (t - _EPOCH).total_seconds()
