"""The prediction-event store, by measurement: DuckDB vs SQLite vs the metadata-DB table.

Workload (the same for every candidate, generated vectorised with numpy/Arrow): `--events`
prediction events (default 10 million) spread evenly over 7 days, one deployment, three
versions (60/30/10%), gamma-distributed latencies, 1% errors, arriving in time order in
batches of `--batch` (default 10,000, a replica's flush). The process is pinned to one core
and DuckDB runs one thread, so ingest figures are per core.

Candidates:
  * duckdb: `DuckDbMetricsStore` (the default store) fed Arrow batches; `ingest_*` counts
    the commit of every batch (WAL synced) and the checkpoints that compress them into the
    table, `rollup_s` the pass that folds all of them into the 1-minute and 1-hour rollups;
    `objects_*` the same for `PredictionEvent` batches through `insert_events`. Queries go through `MetricsService.query` exactly as
    the API does: `auto` (1-minute rollups plus the raw tail) and, for reference, `raw`.
  * sqlite: the same columns in a plain SQLite table (WAL, synchronous=FULL so that a commit
    is as durable as DuckDB's), time as integer microseconds, index on (project, time),
    batches by `executemany`. SQLite has no percentile function, so the query takes count
    and mean by SQL and fetches the window's latencies for numpy's percentiles.
  * metadata_db: `SqlMetricsStore` (SQLAlchemy, the pre-issue-9 store) fed `PredictionEvent`
    batches for `--orm-events` events (its per-event cost makes 10M impractical), then
    filled to `--events` rows by plain inserts so its query runs over the same data.

Query: `--queries` random minute-aligned 1-hour windows, 1-minute step, grouped by version,
for each of count, latency_mean, latency_p50, latency_p95, latency_p99 (one query each);
latency is wall time of the call, p50/p99 over all metric queries. Bytes per event: files
on disk (after a checkpoint) divided by events, rollups and indexes included.

`figures.best` names the winner of each measure. Only DuckDB maintains rollups here (its
ingest figure with them is the headline; `ingest_events_per_s` without them compares with
the others), so its raw-event query (`query_raw`) is what compares with the others' queries.
On the 2-core development machine (busy) DuckDB and SQLite both ingested 200-300k events/s,
SQLite sometimes faster, while DuckDB answered raw-event queries 3-6x faster and stored
an event in about 40% of the bytes (rollups included): DuckDB is the default store.

    python -m bench.metrics_bench [--events 10000000] [--queries 30]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry

from bench._harness import percentile, write_result
from modelyard.core.db import Database
from modelyard.metrics._arrow import SCHEMA
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics.models import PredictionEvent
from modelyard.metrics.service import MetricsService
from modelyard.metrics.store import SqlMetricsStore

T0 = datetime(2026, 1, 1)
SPAN_S = 7 * 86400
METRICS = ("count", "latency_mean", "latency_p50", "latency_p95", "latency_p99")
_EPOCH = datetime(1970, 1, 1)


def generate(n: int, seed: int = 0) -> pa.Table:
    """`n` events in time order over 7 days from T0, as one Arrow table shaped like SCHEMA."""
    rng = np.random.default_rng(seed)
    t0_us = int((T0 - _EPOCH).total_seconds() * 1e6)
    times = t0_us + np.sort(rng.integers(0, SPAN_S * 1_000_000, size=n))
    version = rng.choice(np.array([1, 2, 3], dtype=np.int32), size=n, p=[0.6, 0.3, 0.1])
    latency = rng.gamma(2.0, 6.0, size=n) + version * 0.5
    outcome = np.where(rng.random(n) < 0.01, "error", "ok")
    label = rng.integers(0, 10, size=n)
    mean = rng.normal(0.0, 1.0, size=n)
    ids = pc.binary_join_element_wise("r-", pa.array(np.arange(n)).cast(pa.string()), "")
    means = pa.array(mean)
    summary = pc.binary_join_element_wise('{"mean": ', means.cast(pa.string()), "}", "")
    return pa.table({
        "seq": pa.array(np.zeros(n, dtype=np.int64)),
        "project": pa.repeat("p", n),
        "deployment": pa.repeat("digits", n),
        "model": pa.repeat("digits-cnn", n),
        "version": pa.array(version),
        "time": pa.array(times, pa.timestamp("us")),
        "latency_ms": pa.array(latency),
        "outcome": pa.array(outcome, pa.string()),
        "label": pc.cast(pa.array(label), pa.string()),
        "confidence": pa.array(rng.random(n)),
        "request_id": ids,
        "shadow": pa.array(np.zeros(n, dtype=bool)),
        "input_mean": means,
        "input_summary": summary,
    }, schema=SCHEMA)


def windows(k: int, seed: int = 1) -> list[datetime]:
    rng = random.Random(seed)
    return [T0 + timedelta(minutes=rng.randrange(0, SPAN_S // 60 - 60)) for _ in range(k)]


def _latencies(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
            "mean_ms": statistics.fmean(samples), "queries": len(samples)}


def _time_queries(svc: MetricsService, starts: list[datetime],
                  **kw: Any) -> tuple[dict[str, Any], Any]:
    """Every metric over every 1-hour window at 1-minute steps grouped by version, through the
    service: query latencies per metric and overall, and the last answer."""
    per_metric: dict[str, Any] = {}
    all_ms: list[float] = []
    res = None
    for metric in METRICS:
        ms = []
        for s in starts:
            t = time.perf_counter()
            res = svc.query("p", metric, s, s + timedelta(hours=1), 60, "version", **kw)
            ms.append((time.perf_counter() - t) * 1000)
            assert len(res.series) == 3 and len(res.series[0].points) == 60
        per_metric[metric] = _latencies(ms)
        all_ms += ms
    return {"all": _latencies(all_ms), "per_metric": per_metric}, res


def _dir_bytes(path: Path, prefix: str) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.name.startswith(prefix))


# -- duckdb -------------------------------------------------------------------------------------
def bench_duckdb(data: pa.Table, batch: int, starts: list[datetime], tmp: Path) -> dict[str, Any]:
    store = DuckDbMetricsStore(tmp / "events.duckdb", threads=1)
    t = time.perf_counter()
    for off in range(0, data.num_rows, batch):
        store.append(data.slice(off, batch))
    store.checkpoint()  # compressing the last WAL is part of the cost of storing
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    store.roll_up()
    rollup_s = time.perf_counter() - t
    # the product path from objects: PredictionEvent batches through insert_events
    sample = [PredictionEvent(project="p", deployment="digits", model="digits-cnn", version=1,
                              time=T0 + timedelta(days=8, microseconds=i), latency_ms=5.0,
                              label=str(i % 10), confidence=0.5, request_id=f"o-{i}",
                              input_summary={"mean": 0.1}) for i in range(batch * 5)]
    t = time.perf_counter()
    for off in range(0, len(sample), batch):
        store.insert_events(sample[off:off + batch])
    store.checkpoint()
    objects_s = time.perf_counter() - t
    store.roll_up()
    store.checkpoint()
    counts = store.counts()
    db = Database(f"sqlite:///{tmp / 'meta.db'}")
    svc = MetricsService(db, CollectorRegistry(), store=store)
    out: dict[str, Any] = {
        "events": data.num_rows, "batch": batch, "ingest_s": ingest_s,
        "ingest_events_per_s": data.num_rows / ingest_s, "rollup_s": rollup_s,
        "ingest_with_rollup_events_per_s": data.num_rows / (ingest_s + rollup_s),
        "objects_events": len(sample), "objects_events_per_s": len(sample) / objects_s,
        "rows": counts,
        "bytes": _dir_bytes(tmp, "events.duckdb"),
    }
    out["bytes_per_event"] = out["bytes"] / (data.num_rows + len(sample))
    for resolution in ("auto", "raw"):
        timed, res = _time_queries(svc, starts, resolution=resolution)
        out[f"query_{resolution}"] = {**timed, "answered_by": res.resolution}
    store.close()
    db.dispose()
    return out


# -- sqlite -------------------------------------------------------------------------------------
_SQLITE_COLS = ("project", "deployment", "model", "version", "time_us", "latency_ms", "outcome",
                "label", "confidence", "request_id", "shadow", "input_mean", "input_summary")


def _rows(tbl: pa.Table) -> list[tuple[Any, ...]]:
    cols = [tbl.column(c).to_pylist() for c in ("project", "deployment", "model", "version")]
    cols.append(pc.cast(tbl.column("time"), pa.int64()).to_pylist())
    cols += [tbl.column(c).to_pylist() for c in _SQLITE_COLS[5:]]
    return list(zip(*cols, strict=True))


def bench_sqlite(data: pa.Table, batch: int, starts: list[datetime], tmp: Path
                 ) -> dict[str, Any]:
    path = tmp / "events.sqlite"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE events (project TEXT, deployment TEXT, model TEXT, version INTEGER,"
                " time_us INTEGER, latency_ms REAL, outcome TEXT, label TEXT, confidence REAL,"
                " request_id TEXT, shadow INTEGER, input_mean REAL, input_summary TEXT)")
    con.execute("CREATE INDEX ix_events_project_time ON events (project, time_us)")
    insert = f"INSERT INTO events VALUES ({', '.join('?' * len(_SQLITE_COLS))})"
    t = time.perf_counter()
    for off in range(0, data.num_rows, batch):
        rows = _rows(data.slice(off, batch))
        con.execute("BEGIN")
        con.executemany(insert, rows)
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as for duckdb: the WAL folded in
    ingest_s = time.perf_counter() - t
    out: dict[str, Any] = {"events": data.num_rows, "batch": batch, "ingest_s": ingest_s,
                           "ingest_events_per_s": data.num_rows / ingest_s,
                           "bytes": _dir_bytes(tmp, "events.sqlite")}
    out["bytes_per_event"] = out["bytes"] / data.num_rows
    per_metric: dict[str, Any] = {m: [] for m in METRICS}
    for s in starts:
        lo = int((s - _EPOCH).total_seconds() * 1e6)
        hi = lo + 3600 * 1_000_000
        for metric in METRICS:
            t = time.perf_counter()
            if metric in ("count", "latency_mean"):
                con.execute("SELECT version, (time_us - ?) / 60000000 AS step, count(*), "
                            "avg(latency_ms) FROM events WHERE project = 'p' AND time_us >= ? "
                            "AND time_us < ? GROUP BY version, step", (lo, lo, hi)).fetchall()
            else:
                q = {"latency_p50": 50, "latency_p95": 95, "latency_p99": 99}[metric]
                rows = con.execute("SELECT version, (time_us - ?) / 60000000, latency_ms "
                                   "FROM events WHERE project = 'p' AND time_us >= ? AND "
                                   "time_us < ?", (lo, lo, hi)).fetchall()
                arr = np.array(rows, dtype=np.float64)
                cell = arr[:, 0] * 100 + arr[:, 1]
                order = np.lexsort((arr[:, 2], cell))
                _, first = np.unique(cell[order], return_index=True)
                for a, b in zip(first, [*first[1:], len(order)], strict=True):
                    np.percentile(arr[order[a:b], 2], q)
            per_metric[metric].append((time.perf_counter() - t) * 1000)
    con.close()
    all_ms = [x for v in per_metric.values() for x in v]
    out["query"] = {"all": _latencies(all_ms),
                    "per_metric": {m: _latencies(v) for m, v in per_metric.items()}}
    return out


# -- metadata-DB table --------------------------------------------------------------------------
def bench_metadata_db(data: pa.Table, orm_events: int, batch: int, starts: list[datetime],
                      tmp: Path) -> dict[str, Any]:
    db = Database(f"sqlite:///{tmp / 'meta.db'}")
    db.migrate("metrics@head")
    store = SqlMetricsStore(db)
    head = data.slice(0, orm_events).to_pylist()
    events = [PredictionEvent(project=r["project"], deployment=r["deployment"],
                              model=r["model"], version=r["version"], time=r["time"],
                              latency_ms=r["latency_ms"], outcome=r["outcome"],
                              label=r["label"], confidence=r["confidence"],
                              request_id=r["request_id"], shadow=r["shadow"],
                              input_summary={"mean": r["input_mean"]}) for r in head]
    t = time.perf_counter()
    for off in range(0, len(events), batch):
        store.insert_events(events[off:off + batch])
    ingest_s = time.perf_counter() - t
    # fill the rest of the table directly so the query runs over the same events
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    for off in range(orm_events, data.num_rows, 100_000):
        tbl = data.slice(off, 100_000)
        times = [str(x) for x in tbl.column("time").to_pylist()]
        cols = [tbl.column(c).to_pylist() for c in
                ("project", "deployment", "model", "version")]
        cols += [times] + [tbl.column(c).to_pylist() for c in
                           ("latency_ms", "outcome", "label", "confidence", "request_id",
                            "shadow", "input_summary")]
        cur.executemany("INSERT INTO metrics_events (project, deployment, model, version, time,"
                        " latency_ms, outcome, label, confidence, request_id, shadow, "
                        "input_summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        list(zip(*cols, strict=True)))
        raw.commit()
    cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    svc = MetricsService(db, CollectorRegistry(), store=store)
    timed, _ = _time_queries(svc, starts)
    out = {"events": data.num_rows, "orm_events": orm_events, "batch": batch,
           "ingest_s": ingest_s, "ingest_events_per_s": orm_events / ingest_s,
           "bytes": _dir_bytes(tmp, "meta.db"), "query": timed}
    out["bytes_per_event"] = out["bytes"] / data.num_rows
    db.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=30, help="1-hour windows per metric")
    ap.add_argument("--orm-events", type=int, default=200_000)
    ap.add_argument("--only", nargs="*", default=["duckdb", "sqlite", "metadata_db"])
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    t = time.perf_counter()
    data = generate(args.events)
    gen_s = time.perf_counter() - t
    print(f"generated {args.events:,} events in {gen_s:.1f} s")
    starts = windows(args.queries)
    figures: dict[str, Any] = {"generate_s": gen_s, "events": args.events,
                               "windows": [s.isoformat() for s in starts]}
    runners = {
        "duckdb": lambda d: bench_duckdb(data, args.batch, starts, d),
        "sqlite": lambda d: bench_sqlite(data, args.batch, starts, d),
        "metadata_db": lambda d: bench_metadata_db(
            data, min(args.orm_events, args.events), args.batch, starts, d),
    }
    for name in args.only:
        with tempfile.TemporaryDirectory(prefix=f"metrics-bench-{name}-") as d:
            t = time.perf_counter()
            figures[name] = runners[name](Path(d))
            print(f"{name}: {time.perf_counter() - t:.1f} s "
                  f"ingest {figures[name]['ingest_events_per_s']:,.0f}/s "
                  f"bytes/event {figures[name]['bytes_per_event']:.1f}")
    duck = figures["duckdb"]
    ran = [n for n in ("duckdb", "sqlite", "metadata_db") if n in figures]
    query_p99 = {n: (figures[n].get("query_raw") or figures[n]["query"])["all"]["p99_ms"]
                 for n in ran}
    figures["best"] = {  # which candidate wins each measure (raw events, no rollups)
        "ingest_events_per_s": max(ran, key=lambda n: figures[n]["ingest_events_per_s"]),
        "raw_query_p99_ms": min(ran, key=lambda n: query_p99[n]),
        "bytes_per_event": min(ran, key=lambda n: figures[n]["bytes_per_event"]),
    }
    print("best:", figures["best"])
    write_result(
        "metrics_ingest", "batched ingest of prediction events, one core, durable commits "
        "and 1m/1h rollups included (duckdb store; sqlite and metadata-DB table in figures)",
        "events/s", duck["ingest_with_rollup_events_per_s"], 100_000, True, figures, {},
        __file__)
    write_result(
        "metrics_query", f"p99 latency of 1-hour, 1-minute-step queries grouped by version "
        f"(count, mean, p50, p95, p99) over {args.events:,} events (duckdb store, auto "
        "resolution; raw, sqlite and metadata-DB table in figures)",
        "ms", duck["query_auto"]["all"]["p99_ms"], 50, False, figures, {}, __file__)


if __name__ == "__main__":
    main()
