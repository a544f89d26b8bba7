"""Persistence of prediction events and feedback.

`MetricsStore` is the event-store contract. Two implementations:
  * `DuckDbMetricsStore` (`_duck.py`): the default, embedded per server, with 1-minute and
    1-hour rollups and retention (chosen by bench/metrics_bench.py);
  * `SqlMetricsStore` (here): raw events in a metadata-DB table, no rollups;
    `settings.metrics.store = "database"` keeps every event there. Its queries also read the
    packed chunks replicas leave (`_outbox.py`), and its `maintain` moves them into the table.
  * `OutboxMetricsStore` (here): what a serving replica writes to (it shares the metadata DB
    and owns no file): packed chunks, which the owning server imports into its DuckDB file
    (or moves into the table, when it is a `SqlMetricsStore`). Older replicas wrote rows to
    the table, which a DuckDB owner still imports.
Alert rules always live in the metadata database (`alert_store.SqlAlertStore`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.core.db import Database
from modelyard.metrics._limits import about_values, log_apart, problem, summary_mean
from modelyard.metrics._outbox import Outbox, decoded, to_events
from modelyard.metrics.models import (
    Cells,
    Event,
    EventColumns,
    EventRow,
    Feedback,
    PredictionEvent,
)
from modelyard.metrics.tables import (
    MetricEventRow,
    MetricFeedbackRow,
)

_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept, in days."""

    raw_days: float = 7
    rollup_1m_days: float = 30
    rollup_1h_days: float = 365


class MetricsStore(abc.ABC):
    """Append-only events plus feedback keyed by request id. Thread safe.

    A store that keeps rollups lists their step sizes (seconds) in `resolutions` and answers
    `cells`; the others answer every query from raw `events`.
    """

    resolutions: tuple[int, ...] = ()

    @abc.abstractmethod
    def insert_events(self, events: Sequence[Event]) -> int:
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

    def feature_values(self, project: str, deployment: str, start: datetime,
                       end: datetime) -> list[dict[str, Any]]:
        """The `features` of each ok, non-shadow event's input summary in `[start, end)` that
        has them (a tabular model's inputs by feature name)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read input features")

    def find(self, project: str, request_id: str) -> list[PredictionEvent]:
        """The stored events of one request (`request_id`, or `request_id/N` for row N of a
        batch request), shadow copies included, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} cannot look up a request id")

    def cells(self, project: str, resolution: int, start: datetime, end: datetime,
              step_s: float, deployment: str | None, include_shadow: bool,
              group_by: str | None) -> Cells:
        """Rollups of `resolution` seconds in `[start, end)` (both aligned to it) merged with
        the raw events not rolled up yet, by (group, step, latency bucket)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no rollups")

    def maintain(self, now: datetime, retention: Retention) -> dict[str, int]:
        """Roll up new events and drop what is past `retention`; returns counts by kind."""
        return {}

    def close(self) -> None:
        """Release files and connections; idempotent, and a later call opens them again."""
        return None


_EVENT_COLUMNS = ("project", "deployment", "model", "version", "time", "latency_ms", "outcome",
                  "label", "confidence", "request_id", "shadow", "input_summary")


MAX_FOUND = 4096  # rows of one request at most (MAX_PREDICT_INPUTS) plus its shadow copies
_SQLITE_CHUNK = 256  # events converted per executemany


class SqlMetricsStore(MetricsStore):
    """Events in the metadata DB's table. `owner`: this process keeps the events there, so its
    `maintain` moves the replicas' packed chunks into the table; a serving replica set to this
    store is no owner (its main server may keep DuckDB, which imports the chunks itself)."""

    def __init__(self, db: Database, owner: bool = True) -> None:
        self.db = db
        self.owner = owner
        self.packed = Outbox(db)

    def insert_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        with self.db.session() as s:
            return self._write(s, events)

    def _write(self, s: Session, events: Sequence[Event]) -> int:
        """Insert `events` in `s`'s transaction."""
        if self.db.engine.dialect.name == "sqlite":
            return self._write_sqlite(s, events)
        rows = [
            {
                "project": e.project, "deployment": e.deployment, "model": e.model,
                "version": e.version, "time": e.time, "latency_ms": e.latency_ms,
                "outcome": e.outcome, "label": e.label, "confidence": e.confidence,
                "request_id": e.request_id, "shadow": e.shadow, "input_summary": e.input_summary,
            }
            for e in events
        ]
        # a Core insert of the table: the same rows, without the ORM's bulk-insert bookkeeping
        # (about half the time per row; a serving replica stored one row per prediction)
        s.execute(sa.insert(cast(sa.Table, MetricEventRow.__table__)), rows)
        return len(rows)

    def _write_sqlite(self, s: Session, events: Sequence[Event]) -> int:
        """The same rows through the driver's executemany, without SQLAlchemy's per-row
        parameter assembly, in chunks (a serving replica's flush thread holds the GIL while it
        converts a chunk; the driver lets go of it for each row it writes).

        Values are converted by their columns' bind processors, except for the two costly
        ones: a naive time is written as `isoformat(" ", "microseconds")`, the processor's
        very format (so times still compare as strings), and a summary is encoded by orjson
        (4 µs less per row each; JSON the column's reader reads the same)."""
        dialect = self.db.engine.dialect
        table = cast(sa.Table, MetricEventRow.__table__)
        procs = {n: table.c[n].type.dialect_impl(dialect).bind_processor(dialect)
                 for n in _EVENT_COLUMNS}
        converted = ("time", "latency_ms", "confidence", "shadow", "input_summary")
        if any(procs[n] is not None for n in _EVENT_COLUMNS if n not in converted):
            raise AssertionError("an event column needs a conversion this insert skips")

        def conv(name: str) -> Any:
            return procs[name] or (lambda v: v)

        t, lat, conf, b, j = (conv(n) for n in converted)

        def when(v: datetime) -> Any:
            return v.isoformat(" ", "microseconds") if v.tzinfo is None and v.year >= 1000 \
                else t(v)

        def summary(v: dict[str, Any] | None) -> Any:
            if v is None:
                return None
            try:
                return orjson.dumps(v).decode()
            except TypeError:  # what orjson does not encode, the column's own encoder may
                return j(v)

        sql = (f"INSERT INTO {table.name} ({', '.join(_EVENT_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})")
        conn = s.connection()
        for i in range(0, len(events), _SQLITE_CHUNK):
            conn.exec_driver_sql(sql, [
                (e.project, e.deployment, e.model, e.version, when(e.time),
                 lat(e.latency_ms), e.outcome, e.label, conf(e.confidence), e.request_id,
                 b(e.shadow), summary(e.input_summary))
                for e in events[i:i + _SQLITE_CHUNK]])
        return len(events)

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
        # read after the rows: a chunk moved into the table in between is missing from this
        # answer (as rows a DuckDB owner imports are), never counted twice
        packed = self.packed.select(project, start, end, deployment, include_shadow)
        cols: list[Any] = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * 8
        times = [(t - _EPOCH).total_seconds() for t in cols[3]]
        if packed["request_id"]:
            truth = self._labels(project, packed["request_id"])
            for i, name in enumerate(("deployment", "model", "version")):
                cols[i] = cols[i] + packed[name]
            times += [(t - _EPOCH).total_seconds() for t in packed["time"]]
            for i, name in ((4, "latency_ms"), (5, "outcome"), (6, "label")):
                cols[i] = cols[i] + packed[name]
            cols[7] = cols[7] + [truth.get(r) for r in packed["request_id"]]
        return EventColumns(
            deployment=np.array(cols[0], dtype=object),
            model=np.array(cols[1], dtype=object),
            version=np.array(cols[2], dtype=np.int64),
            time_s=np.array(times, dtype=np.float64),
            latency_ms=np.array(cols[4], dtype=np.float64),
            outcome=np.array(cols[5], dtype=object),
            label=np.array(cols[6], dtype=object),
            true_label=np.array(cols[7], dtype=object),
        )

    def find(self, project: str, request_id: str) -> list[PredictionEvent]:
        # the request id index answers both the id and its rows ('id/N' sorts right after)
        e = MetricEventRow
        q = sa.select(e).where(e.project == project, sa.or_(
            e.request_id == request_id, sa.and_(e.request_id > f"{request_id}/",
                                                e.request_id < f"{request_id}0"))
        ).order_by(e.time, e.request_id)
        with self.db.session() as s:
            return [PredictionEvent.model_construct(**{c: getattr(r, c) for c in _EVENT_COLUMNS})
                    for r in s.scalars(q.limit(MAX_FOUND))]

    def _labels(self, project: str, request_ids: list[str]) -> dict[str, str]:
        """The feedback label of each of these requests that has one."""
        f, ids = MetricFeedbackRow, sorted(set(request_ids))
        out: dict[str, str] = {}
        with self.db.session() as s:
            for i in range(0, len(ids), 500):
                out.update(s.execute(sa.select(f.request_id, f.label).where(
                    f.project == project, f.request_id.in_(ids[i:i + 500]))).tuples().all())
        return out


    def _served_summaries(self, project: str, deployment: str, start: datetime,
                          end: datetime) -> list[Any]:
        """Input summaries of the deployment's answered, non-shadow requests in [start, end):
        the table's and the replicas' packed chunks not yet moved into it."""
        e = MetricEventRow
        q = sa.select(e.input_summary).where(
            e.project == project, e.deployment == deployment, e.time >= start, e.time < end,
            e.outcome == "ok", e.shadow.is_(False))
        with self.db.session() as s:
            summaries: list[Any] = list(s.scalars(q).all())
        packed = self.packed.select(project, start, end, deployment, False)
        summaries += [x for x, o in zip(packed["input_summary"], packed["outcome"], strict=True)
                      if o == "ok"]
        return summaries

    def input_means(self, project: str, deployment: str, start: datetime,
                    end: datetime) -> np.ndarray:
        means = (summary_mean(x) for x in self._served_summaries(project, deployment, start, end))
        return np.asarray([m for m in means if m is not None], dtype=np.float64)

    def feature_values(self, project: str, deployment: str, start: datetime,
                       end: datetime) -> list[dict[str, Any]]:
        return [x["features"] for x in self._served_summaries(project, deployment, start, end)
                if isinstance(x, dict) and isinstance(x.get("features"), dict)]

    def maintain(self, now: datetime, retention: Retention) -> dict[str, int]:
        """Move the replicas' packed chunks into the table: this store owns the events. Each
        chunk's delete and insert commit together; raw events have no retention here."""
        if not self.owner:
            return {}
        moved, quarantined, after = 0, 0, 0
        while chunks := self.packed.take(after):
            after = chunks[-1].id
            for chunk, events in decoded(chunks, to_events):
                good, apart = [], []
                for e in events:
                    why = problem(e)
                    if why is None:
                        good.append(e)
                    else:
                        apart.append((e, why))
                try:
                    with self.db.session() as s:
                        if self.packed.claim(s, chunk):
                            moved += self._write(s, good) if good else 0
                            quarantined += len(apart)
                            log_apart(apart, "the move of replicas' packed events")
                except Exception as e:
                    if not about_values(e):
                        raise
                    # a value `problem` does not know of: the chunk is set apart whole rather
                    # than fail every later pass
                    with self.db.session() as s:
                        if self.packed.claim(s, chunk):
                            quarantined += len(events)
                            log_apart([(x, f"its chunk was refused: {e}") for x in events],
                                      "the move of replicas' packed events")
        return {"imported": moved, "quarantined": quarantined}


    def take(self, limit: int) -> list[tuple[int, EventRow]]:
        """Up to `limit` events, oldest row first, each with its row id. Not validated: the
        taker sets apart what it cannot keep (`_limits.py`) rather than stop at it."""
        e = MetricEventRow
        with self.db.session() as s:
            rows = list(s.scalars(sa.select(e).order_by(e.id).limit(limit)))
            return [(r.id, EventRow(
                r.project, r.deployment, r.model, r.version, r.time, r.latency_ms, r.outcome,
                r.label, r.confidence, r.request_id, r.input_summary, r.shadow)) for r in rows]

    def delete_rows(self, rows: list[tuple[int, str]]) -> None:
        """Drop the events with these (row id, request id) pairs (after another store took
        them); both must match, so a row id SQLite reused for a newer event is left alone."""
        e = MetricEventRow
        with self.db.session() as s:
            for i in range(0, len(rows), 500):
                chunk = rows[i:i + 500]
                s.execute(sa.delete(e).where(e.id.in_([r[0] for r in chunk])).where(
                    sa.tuple_(e.id, e.request_id).in_(chunk)))


class OutboxMetricsStore(SqlMetricsStore):
    """A serving replica's store: events go to the outbox as packed chunks, for the owning
    server to take; queries read them there and in the table, as `SqlMetricsStore` does."""

    def insert_events(self, events: Sequence[Event]) -> int:
        return self.packed.put(events)

    def maintain(self, now: datetime, retention: Retention) -> dict[str, int]:
        """Nothing: the owner takes the chunks (a DuckDB owner imports them itself, and a
        replica moving them into the table meanwhile would have it import them twice)."""
        return {}


def naive_utc(t: datetime) -> datetime:
    if t.tzinfo is not None:
        return t.astimezone(UTC).replace(tzinfo=None)
    return t


def to_epoch(t: datetime) -> float:
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return (t - _EPOCH).total_seconds()
