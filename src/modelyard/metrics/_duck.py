"""The embedded event store: raw events and their rollups in one DuckDB file per server.

Why DuckDB (bench/metrics_bench.py measures it against SQLite and the metadata-DB table,
10M events): batches go in as Arrow tables at about 200k events/s on one core (SQLite about
the same, the metadata-DB table through SQLAlchemy ~30k/s), columnar compression stores an
event in ~50 bytes with its rollups (SQLite ~135, the metadata-DB table ~185), and a 1-hour,
1-minute-step query grouped by version takes ~10 ms from rollups and ~20 ms from raw events,
where SQLite, lacking percentiles, hands every row to Python (60-130 ms p99).

Why one file per server (under the data dir) and not the metadata database: the time series
is big, append-only and read by scans, which a row store shared by every component serves
badly; the metadata DB stays small. A DuckDB file has one writer process, so replicas
(`modelyard serve`) leave their events in the metadata DB, as packed chunks (`_outbox.py`;
older replicas: one `metrics_events` row each), and the server that owns this file imports
them (`maintain`): the copy and the list of what it copied (batch ids; for rows, (row id,
request id) pairs) commit together here, then those are deleted there and the list cleared,
and a pass interrupted in between finishes the delete first. Nothing is lost or counted
twice, whatever order concurrent replicas commit in.

Durability: `append` commits before it returns, and a DuckDB commit is written to its WAL
and synced, so an acknowledged event survives a crash (replayed on the next open).

Rollups: every batch gets an ingest sequence number; a maintenance pass folds the events
past the `rolled` watermark into `rollup_60` and `rollup_3600` (count, latency sum and error
count per latency bucket, see `_hist.py`) and moves the watermark in the same transaction.
Queries read rollups plus the not-yet-rolled tail of raw events, so they are exact up to the
latency bucket whatever the maintenance pass has reached.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from modelyard.core.errors import Unavailable
from modelyard.core.private import private_dir, private_files
from modelyard.metrics._arrow import columns_table, events_table
from modelyard.metrics._hist import SQL_BIN, SQL_LATENCY
from modelyard.metrics._limits import converted, log_apart
from modelyard.metrics._outbox import Columns, Outbox, decoded, to_events
from modelyard.metrics.models import Cells, Event, EventColumns, Feedback, PredictionEvent
from modelyard.metrics.store import (
    MAX_FOUND,
    MetricsStore,
    Retention,
    SqlMetricsStore,
    naive_utc,
)

RESOLUTIONS = (3600, 60)  # rollup steps in seconds, coarsest first

_DDL = [
    "CREATE TABLE IF NOT EXISTS events (seq BIGINT, project VARCHAR, deployment VARCHAR, "
    "model VARCHAR, version INTEGER, time TIMESTAMP, latency_ms DOUBLE, outcome VARCHAR, "
    "label VARCHAR, confidence DOUBLE, request_id VARCHAR, shadow BOOLEAN, input_mean DOUBLE, "
    "input_summary VARCHAR)",
    "CREATE TABLE IF NOT EXISTS feedback (project VARCHAR, request_id VARCHAR, label VARCHAR, "
    "time TIMESTAMP, PRIMARY KEY (project, request_id))",
    "CREATE TABLE IF NOT EXISTS state (key VARCHAR PRIMARY KEY, value BIGINT)",
    "CREATE TABLE IF NOT EXISTS outbox_pending (id BIGINT, request_id VARCHAR)",
    "CREATE TABLE IF NOT EXISTS outbox_chunks_pending (batch_id VARCHAR)",
    *[f"CREATE TABLE IF NOT EXISTS rollup_{r} (project VARCHAR, deployment VARCHAR, "
      "model VARCHAR, version INTEGER, shadow BOOLEAN, bucket BIGINT, bin INTEGER, n BIGINT, "
      "latency_sum DOUBLE, errors BIGINT, "
      "PRIMARY KEY (project, deployment, model, version, shadow, bucket, bin))"
      for r in RESOLUTIONS],
]
_ERR = "outcome IN ('error', 'timeout')"
_EPOCH_S = "(epoch_us(time) // 1000000)"
_LAT = SQL_LATENCY.format(lat="latency_ms")  # what rollups and queries read (see _hist.py)
_BIN = SQL_BIN.format(lat=f"({_LAT})")


class DuckDbMetricsStore(MetricsStore):
    """Events, feedback and rollups in the DuckDB file at `path`; `outbox` is the metadata-DB
    table replicas write to, imported by `maintain` (None: no replicas to import from)."""

    resolutions = RESOLUTIONS
    _shared: weakref.WeakValueDictionary[Path, DuckDbMetricsStore] = \
        weakref.WeakValueDictionary()
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls, path: Path, outbox: SqlMetricsStore | None = None) -> DuckDbMetricsStore:
        """The one store of this process for `path`: batch numbers and the rollup watermark
        live in the object, so two objects on one file would disagree."""
        key = path.resolve()
        with cls._shared_lock:
            store = cls._shared.get(key)
            if store is None:
                store = cls._shared[key] = cls(path, outbox)
            return store

    def __init__(self, path: Path, outbox: SqlMetricsStore | None = None,
                 threads: int | None = None) -> None:
        private_dir(path.parent, tighten_existing=False)
        self.path = path
        self.threads = threads  # DuckDB's worker threads (None: one per core)
        self.outbox = outbox
        self._lock = threading.RLock()
        self._open: duckdb.DuckDBPyConnection | None = None
        self._seq = int(self._scalar("SELECT coalesce(max(seq), 0) FROM events") or 0)
        self._rolled = self._state("rolled")  # events with seq <= this are in the rollups
        self._seq = max(self._seq, self._rolled)

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._open is None:
            config: dict[str, str | bool | int | float | list[str]] = \
                {"threads": self.threads} if self.threads else {}
            fresh = not self.path.exists()
            try:
                self._open = duckdb.connect(str(self.path), config=config)
            except duckdb.IOException as e:
                raise Unavailable(
                    f"cannot open the metrics store {self.path}: {e}. One modelyard server "
                    "owns a data dir; give this process its own `home` (or "
                    "MODELYARD_METRICS__PATH), or set MODELYARD_METRICS__STORE=database"
                ) from e
            for ddl in _DDL:
                self._open.execute(ddl)
            # Made just now, DuckDB applied the umask (nothing to report); found loose, news.
            private_files(self.path, self._wal, warn=not fresh)
        return self._open

    @property
    def _wal(self) -> Path:
        return Path(f"{self.path}.wal")

    def _private_wal(self) -> None:
        # DuckDB makes its WAL anew after each checkpoint, with the umask's mode (it has no
        # setting for it): tightened after every write, as the database file was at open.
        private_files(self._wal, warn=False)

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._con.execute(sql, list(params)).fetchall()  # fetchall: leaves no result open
        return rows[0][0] if rows else None

    def _state(self, key: str) -> int:
        v = self._scalar("SELECT value FROM state WHERE key = ?", [key])
        return 0 if v is None else int(v)

    def _set_state(self, key: str, value: int) -> None:
        self._con.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", [key, value])

    def checkpoint(self) -> None:
        """Fold the WAL into the compressed table file now (DuckDB also does it by itself
        whenever the WAL passes its threshold)."""
        with self._lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        with self._lock:
            if self._open is not None:
                self._open.close()
                self._open = None

    # -- writes ---------------------------------------------------------------------------------
    def insert_events(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        with self._lock:
            return self.append(events_table(events, self._seq + 1))

    def append(self, batch: pa.Table) -> int:
        """Store an Arrow batch shaped like `_arrow.SCHEMA` (its `seq` is set here) in one commit."""
        with self._lock:
            self._seq += 1
            batch = batch.set_column(0, "seq", pa.array(np.full(batch.num_rows, self._seq,
                                                                dtype=np.int64)))
            con = self._con
            con.register("_batch", batch)
            try:
                con.execute("INSERT INTO events SELECT * FROM _batch")
            finally:
                con.unregister("_batch")
            self._private_wal()
            return batch.num_rows

    def upsert_feedback(self, project: str, feedback: list[Feedback]) -> int:
        latest = {f.request_id: f for f in feedback}  # the last one sent wins
        if not latest:
            return 0
        tbl = pa.table({
            "project": [project] * len(latest), "request_id": list(latest),
            "label": [f.label for f in latest.values()],
            "time": pa.array([naive_utc(f.time) for f in latest.values()], pa.timestamp("us")),
        })
        with self._lock:
            self._con.register("_fb", tbl)
            try:
                self._con.execute("INSERT OR REPLACE INTO feedback SELECT * FROM _fb")
            finally:
                self._con.unregister("_fb")
            self._private_wal()
        return len(latest)

    # -- reads ----------------------------------------------------------------------------------
    def events(self, project: str, start: datetime, end: datetime, deployment: str | None,
               include_shadow: bool) -> EventColumns:
        where, params = _filters("e.", project, start, end, deployment, include_shadow)
        sql = ("SELECT e.deployment, e.model, e.version, epoch_us(e.time) / 1e6 AS t, "
               "e.latency_ms, e.outcome, e.label, f.label AS truth FROM events e "
               "LEFT JOIN feedback f ON f.project = e.project AND f.request_id = e.request_id "
               f"WHERE {where}")
        with self._lock:
            tbl = self._con.sql(sql, params=params).to_arrow_table()

        def col(name: str, dtype: Any = object) -> np.ndarray:
            return np.asarray(tbl.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

        return EventColumns(deployment=col("deployment"), model=col("model"),
                            version=col("version", np.int64), time_s=col("t", np.float64),
                            latency_ms=col("latency_ms", np.float64), outcome=col("outcome"),
                            label=col("label"), true_label=col("truth"))

    def find(self, project: str, request_id: str) -> list[PredictionEvent]:
        sql = ("SELECT project, deployment, model, version, time, latency_ms, outcome, label, "
               "confidence, request_id, shadow, input_summary FROM events WHERE project = ? "
               "AND (request_id = ? OR starts_with(request_id, ?)) ORDER BY time, request_id "
               f"LIMIT {MAX_FOUND}")
        with self._lock:
            rows = self._con.execute(sql, [project, request_id, f"{request_id}/"]).fetchall()
        names = ("project", "deployment", "model", "version", "time", "latency_ms", "outcome",
                 "label", "confidence", "request_id", "shadow", "input_summary")
        out = []
        for row in rows:
            d = dict(zip(names, row, strict=True))
            d["input_summary"] = orjson.loads(d["input_summary"]) if d["input_summary"] else None
            out.append(PredictionEvent.model_construct(**d))
        return out

    def input_means(self, project: str, deployment: str, start: datetime,
                    end: datetime) -> np.ndarray:
        where, params = _filters("", project, start, end, deployment, False)
        sql = (f"SELECT input_mean FROM events WHERE {where} AND outcome = 'ok' "
               "AND input_mean IS NOT NULL")
        with self._lock:
            tbl = self._con.sql(sql, params=params).to_arrow_table()
        return np.asarray(tbl.column(0).to_numpy(), dtype=np.float64)

    def feature_values(self, project: str, deployment: str, start: datetime,
                       end: datetime) -> list[dict[str, Any]]:
        where, params = _filters("", project, start, end, deployment, False)
        sql = (f"SELECT input_summary FROM events WHERE {where} AND outcome = 'ok' "
               "AND input_summary LIKE '%\"features\"%'")
        with self._lock:
            texts = self._con.sql(sql, params=params).to_arrow_table().column(0).to_pylist()
        found = (orjson.loads(t).get("features") for t in texts if t)
        return [f for f in found if isinstance(f, dict)]

    def cells(self, project: str, resolution: int, start: datetime, end: datetime,
              step_s: float, deployment: str | None, include_shadow: bool,
              group_by: str | None) -> Cells:
        start_s, end_s = _epoch(start), _epoch(end)
        g = group_by or "''"
        extra, extra_params = "", []
        if deployment is not None:
            extra += " AND deployment = ?"
            extra_params.append(deployment)
        if not include_shadow:
            extra += " AND NOT shadow"
        bucket = f"({_EPOCH_S} // {resolution}) * {resolution}"
        sql = (
            f"SELECT CAST(g AS VARCHAR) AS g, CAST((bucket - ?) // ? AS BIGINT) AS step, bin, "
            "sum(n) AS n, sum(latency_sum) AS latency_sum, sum(errors) AS errors FROM ("
            f"  SELECT {g} AS g, bucket, bin, n, latency_sum, errors FROM rollup_{resolution}"
            f"  WHERE project = ? AND bucket >= ? AND bucket < ?{extra}"
            "  UNION ALL"
            f"  SELECT {g} AS g, {bucket} AS bucket, {_BIN} AS bin,"
            f"  1 AS n, {_LAT} AS latency_sum, CAST({_ERR} AS BIGINT) AS errors FROM events"
            f"  WHERE seq > ? AND project = ? AND time >= ? AND time < ?{extra}"
            ") GROUP BY ALL"
        )
        with self._lock:
            params = [start_s, int(step_s), project, start_s, end_s, *extra_params,
                      self._rolled, project, naive_utc(start), naive_utc(end), *extra_params]
            tbl = self._con.sql(sql, params=params).to_arrow_table()
        groups = tbl.column("g").combine_chunks().dictionary_encode()
        return Cells(groups=[str(x) for x in groups.dictionary.to_pylist()],
                     code=groups.indices.to_numpy().astype(np.int64),
                     step=tbl.column("step").to_numpy().astype(np.int64),
                     bin=tbl.column("bin").to_numpy().astype(np.int64),
                     n=tbl.column("n").to_numpy().astype(np.int64),
                     latency_sum=tbl.column("latency_sum").to_numpy().astype(np.float64),
                     errors=tbl.column("errors").to_numpy().astype(np.int64))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {t: int(self._scalar(f"SELECT count(*) FROM {t}"))
                    for t in ("events", "feedback", *[f"rollup_{r}" for r in RESOLUTIONS])}

    # -- maintenance ----------------------------------------------------------------------------
    def maintain(self, now: datetime, retention: Retention) -> dict[str, int]:
        imported, apart = self._import_outbox()
        with self._lock:
            rolled = self.roll_up()
            pruned = self._prune(now, retention)
            self._private_wal()
        return {"imported": imported, "quarantined": apart, "rolled": rolled, **pruned}

    def roll_up(self) -> int:
        """Fold events past the `rolled` watermark into every rollup; returns how many."""
        with self._lock:
            con = self._con
            lo, hi = self._rolled, self._seq
            if hi <= lo:
                return 0
            con.execute("BEGIN")
            try:
                n = int(self._scalar("SELECT count(*) FROM events WHERE seq > ? AND seq <= ?",
                                     [lo, hi]))
                for r in RESOLUTIONS:
                    con.execute(
                        f"INSERT INTO rollup_{r} SELECT project, deployment, model, version, "
                        f"shadow, ({_EPOCH_S} // {r}) * {r} AS bucket, "
                        f"{_BIN} AS bin, count(*) AS n, "
                        f"sum({_LAT}) AS latency_sum, count(*) FILTER ({_ERR}) AS errors "
                        "FROM events WHERE seq > ? AND seq <= ? GROUP BY ALL "
                        "ORDER BY bucket "  # rows in time order keep zone maps selective
                        "ON CONFLICT DO UPDATE SET n = n + EXCLUDED.n, "
                        "latency_sum = latency_sum + EXCLUDED.latency_sum, "
                        "errors = errors + EXCLUDED.errors", [lo, hi])
                self._set_state("rolled", hi)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self._rolled = hi
            return n

    def _prune(self, now: datetime, retention: Retention) -> dict[str, int]:
        """Drop raw events (already rolled up) and rollup rows older than their retention."""
        con = self._con
        rolled = self._rolled
        raw_cut = now - timedelta(days=retention.raw_days)
        out = {"pruned_raw": int(self._scalar(
            "SELECT count(*) FROM events WHERE time < ? AND seq <= ?", [raw_cut, rolled]))}
        if out["pruned_raw"]:
            con.execute("DELETE FROM events WHERE time < ? AND seq <= ?", [raw_cut, rolled])
        con.execute("DELETE FROM feedback WHERE time < ?", [raw_cut])
        for r, days in ((60, retention.rollup_1m_days), (3600, retention.rollup_1h_days)):
            cut = _epoch(now - timedelta(days=days))
            out[f"pruned_{r}"] = int(self._scalar(
                f"SELECT count(*) FROM rollup_{r} WHERE bucket < ?", [cut]))
            if out[f"pruned_{r}"]:
                con.execute(f"DELETE FROM rollup_{r} WHERE bucket < ?", [cut])
        return out

    def _import_outbox(self) -> tuple[int, int]:
        """Move replica events from the metadata DB into this file (exactly once); returns
        how many were imported and how many set apart (`_limits.py`)."""
        if self.outbox is None:
            return 0, 0
        rows = self._import_rows(self.outbox)
        chunks = self._import_chunks(self.outbox.packed)
        return rows[0] + chunks[0], rows[1] + chunks[1]

    def _import_chunks(self, outbox: Outbox) -> tuple[int, int]:
        total, apart, after = 0, 0, 0
        while True:
            with self._lock:
                pending = [str(b) for (b,) in self._con.execute(
                    "SELECT batch_id FROM outbox_chunks_pending").fetchall()]
                if pending:  # copied earlier, not deleted there yet
                    outbox.delete(pending)
                    self._con.execute("DELETE FROM outbox_chunks_pending")
                chunks = outbox.take(after)
                if not chunks:
                    return total, apart
                after = chunks[-1].id
                tables: list[pa.Table] = []
                refused: list[tuple[Any, str]] = []
                read = decoded(chunks, lambda cols: cols)
                for chunk, cols in read:
                    try:
                        tables.append(columns_table(cols))
                    except (ValueError, TypeError, ArithmeticError):
                        # some value this store cannot keep: the chunk event by event
                        parts, bad = _chunk_events(chunk.batch_id, cols)
                        tables += parts
                        refused += bad
                if not read:
                    continue
                log_apart(refused, "the import of replicas' packed events")
                batch = pa.concat_tables(tables) if tables else events_table([], 0)
                # a chunk is taken whole: what was set apart of it goes with it
                self._append_taken(batch, "outbox_chunks_pending",
                                   pa.table({"batch_id": [c.batch_id for c, _ in read]}))
                total += batch.num_rows
                apart += len(refused)

    def _import_rows(self, outbox: SqlMetricsStore) -> tuple[int, int]:
        total, apart = 0, 0
        while True:
            with self._lock:
                pending = [(int(i), str(r)) for i, r in self._con.execute(
                    "SELECT id, request_id FROM outbox_pending").fetchall()]
                if pending:  # copied earlier, not deleted there yet
                    outbox.delete_rows(pending)
                    self._con.execute("DELETE FROM outbox_pending")
                rows = outbox.take(50_000)
                if not rows:
                    return total, apart
                parts, refused = converted([e for _, e in rows], lambda p: events_table(p, 0))
                log_apart(refused, "the import of replicas' event rows")
                batch = pa.concat_tables(parts) if parts else events_table([], 0)
                self._append_taken(batch, "outbox_pending",
                                   pa.table({"id": [i for i, _ in rows],
                                             "request_id": [e.request_id for _, e in rows]}))
                total += batch.num_rows
                apart += len(refused)

    def _append_taken(self, events: pa.Table, pending: str, taken: pa.Table) -> None:
        """Append events taken from the metadata DB and note what was taken in `pending`, in
        one transaction: the next pass deletes them there, so a crash in between neither
        loses nor repeats them."""
        self._con.execute("BEGIN")
        try:
            self.append(events)
            self._con.register("_taken", taken)
            self._con.execute(f"INSERT INTO {pending} SELECT * FROM _taken")
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")  # a gap in seq numbers is harmless
            raise
        finally:
            self._con.unregister("_taken")


def _epoch(t: datetime) -> int:
    return int((naive_utc(t) - datetime(1970, 1, 1)).total_seconds())


def _filters(prefix: str, project: str, start: datetime, end: datetime,
             deployment: str | None, include_shadow: bool) -> tuple[str, list[Any]]:
    where = f"{prefix}project = ? AND {prefix}time >= ? AND {prefix}time < ?"
    params: list[Any] = [project, naive_utc(start), naive_utc(end)]
    if deployment is not None:
        where += f" AND {prefix}deployment = ?"
        params.append(deployment)
    if not include_shadow:
        where += f" AND NOT {prefix}shadow"
    return where, params


def _chunk_events(batch_id: str, cols: Columns) -> tuple[list[pa.Table], list[tuple[Any, str]]]:
    """The Arrow parts of a chunk's storable events, and the others with why."""
    try:
        events = to_events(cols)
    except (ValueError, TypeError) as e:  # a time that is no time: nothing of it is readable
        n = len(cols["request_id"])
        ghost = SimpleNamespace(request_id=f"(all {n} of chunk {batch_id})", deployment="?")
        return [], [(ghost, f"unreadable chunk: {e}")] * n
    return converted(events, lambda p: events_table(p, 0))
