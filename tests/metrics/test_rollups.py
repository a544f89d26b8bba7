"""The embedded event store: rollups answer like raw events, retention, crashes, replicas."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from modelyard.core.db import Database
from modelyard.core.settings import MetricsSettings
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics._limits import MAX_LATENCY_MS
from modelyard.metrics.models import EventRow, PredictionEvent
from modelyard.metrics.service import MetricsService
from modelyard.metrics.store import SqlMetricsStore

T0 = datetime(2026, 3, 2, 10, 0, 0)  # on the hour


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    database.migrate("metrics@head")
    yield database
    database.dispose()


@pytest.fixture
def svc(db: Database, tmp_path: Path) -> Iterator[MetricsService]:
    store = DuckDbMetricsStore(tmp_path / "events.duckdb", outbox=SqlMetricsStore(db))
    service = MetricsService(db, CollectorRegistry(), store=store,
                             settings=MetricsSettings(raw_retention_days=7,
                                                      rollup_1m_retention_days=30,
                                                      rollup_1h_retention_days=365))
    yield service
    service.stop()


def _events(n: int, start: datetime, span_s: float, seed: int = 0,
            deployment: str = "d") -> list[PredictionEvent]:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, span_s, n))
    lat = rng.gamma(2.0, 7.0, n)
    return [PredictionEvent(project="p", deployment=deployment, model="m",
                            version=int(rng.integers(1, 4)),
                            time=start + timedelta(seconds=float(offsets[i])),
                            latency_ms=float(lat[i]),
                            outcome="error" if rng.random() < 0.05 else "ok",
                            label=str(i % 10), request_id=f"{deployment}-{seed}-{i}")
            for i in range(n)]


def _expected(events: list[PredictionEvent], metric: str, start: datetime, step_s: int,
              n_steps: int) -> dict[str, list[float | None]]:
    """The answer computed straight from the events, with numpy, per version and step."""
    out: dict[str, list[float | None]] = {}
    for v in sorted({e.version for e in events}):
        vals: list[float | None] = []
        for i in range(n_steps):
            lo, hi = start + timedelta(seconds=i * step_s), start + timedelta(
                seconds=(i + 1) * step_s)
            mine = [e for e in events if e.version == v and lo <= e.time < hi]
            lat = np.array([e.latency_ms for e in mine])
            if metric == "count":
                vals.append(float(len(mine)))
            elif not mine:
                vals.append(None)
            elif metric == "latency_mean":
                vals.append(float(lat.mean()))
            elif metric == "error_rate":
                vals.append(sum(e.outcome == "error" for e in mine) / len(mine))
            else:
                vals.append(float(np.percentile(lat, int(metric[-2:]))))
        out[str(v)] = vals
    return out


def _series(svc: MetricsService, metric: str, start: datetime, step_s: int, n_steps: int,
            resolution: str = "auto") -> tuple[str, dict[str, list[float | None]]]:
    res = svc.query("p", metric, start, start + timedelta(seconds=step_s * n_steps), step_s,
                    "version", resolution=resolution)  # type: ignore[arg-type]
    return res.resolution, {s.group["version"]: [p.value for p in s.points] for s in res.series}


def _close(got: dict[str, list[float | None]], want: dict[str, list[float | None]],
           rel: float) -> bool:
    if got.keys() != want.keys():
        return False
    for k in want:
        for a, b in zip(got[k], want[k], strict=True):
            if (a is None) != (b is None) or (a is not None and a != pytest.approx(b, rel=rel)):
                return False
    return True


@pytest.mark.parametrize("step_s,resolution", [(60, "1m"), (3600, "1h")])
def test_rollups_answer_what_raw_events_answer(svc: MetricsService, step_s: int,
                                               resolution: str) -> None:
    events = _events(3000, T0, 2 * 3600)
    svc.store.insert_events(events[:2000])
    assert svc.maintain(T0 + timedelta(hours=3))["rolled"] == 2000
    svc.store.insert_events(events[2000:])  # a tail that is not rolled up yet
    n_steps = 2 * 3600 // step_s
    for metric in ("count", "latency_mean", "error_rate"):
        used, got = _series(svc, metric, T0, step_s, n_steps)
        assert used == resolution
        assert _close(got, _expected(events, metric, T0, step_s, n_steps), rel=1e-9)
    for metric in ("latency_p50", "latency_p95", "latency_p99"):
        used, got = _series(svc, metric, T0, step_s, n_steps)
        assert used == resolution
        # within one latency bucket (5%) of numpy's percentile of the raw latencies
        assert _close(got, _expected(events, metric, T0, step_s, n_steps), rel=0.05)
        _, raw = _series(svc, metric, T0, step_s, n_steps, resolution="raw")
        assert _close(raw, _expected(events, metric, T0, step_s, n_steps), rel=1e-9)


def test_queries_use_the_coarsest_rollup_that_fits(svc: MetricsService) -> None:
    svc.store.insert_events(_events(200, T0, 3600))
    svc.maintain(T0 + timedelta(hours=1))
    assert _series(svc, "count", T0, 3600, 1)[0] == "1h"
    assert _series(svc, "count", T0, 600, 6)[0] == "1m"
    assert _series(svc, "count", T0, 90, 40)[0] == "raw"  # not a multiple of a minute
    assert _series(svc, "count", T0 + timedelta(seconds=30), 60, 10)[0] == "raw"
    assert _series(svc, "accuracy", T0, 3600, 1)[0] == "raw"  # labels arrive later
    assert _series(svc, "count", T0, 3600, 1, resolution="1m")[1] == \
        _series(svc, "count", T0, 3600, 1, resolution="raw")[1] == {
            str(v): [float(sum(e.version == v for e in _events(200, T0, 3600)))]
            for v in (1, 2, 3)}


def test_retention_drops_old_raw_events_but_their_rollups_still_answer(
        svc: MetricsService) -> None:
    now = T0 + timedelta(days=60)
    recent = _events(300, now - timedelta(days=1), 3600, seed=1)
    old = _events(300, now - timedelta(days=10), 3600, seed=2)  # past raw, within 1m
    ancient = _events(300, now - timedelta(days=40), 3600, seed=3)  # past 1m, within 1h
    for batch in (recent, old, ancient):
        svc.store.insert_events(batch)
    out = svc.maintain(now)
    assert out["pruned_raw"] == 600 and out["rolled"] == 900

    def count(start: datetime, step_s: int, resolution: str) -> float:
        res = svc.query("p", "count", start, start + timedelta(hours=1), step_s,
                        resolution=resolution)  # type: ignore[arg-type]
        return sum(p.value or 0 for p in res.series[0].points)

    for batch, raw, minute, hour in ((recent, 300, 300, 300), (old, 0, 300, 300),
                                     (ancient, 0, 0, 300)):
        start = batch[0].time.replace(minute=0, second=0, microsecond=0)
        assert count(start, 3600, "raw") == raw
        assert count(start, 60, "1m") == minute
        assert count(start, 3600, "1h") == hour
    # the hourly rollup of the dropped raw events gives their exact mean latency
    start = old[0].time.replace(minute=0, second=0, microsecond=0)
    res = svc.query("p", "latency_mean", start, start + timedelta(hours=1), 3600)
    assert res.resolution == "1h"
    assert res.series[0].points[0].value == pytest.approx(np.mean([e.latency_ms for e in old]))
    assert svc.maintain(now) == {"imported": 0, "quarantined": 0, "rolled": 0, "pruned_raw": 0,
                                 "pruned_60": 0, "pruned_3600": 0}


def test_stored_events_with_wild_latencies_stop_neither_rollups_nor_pruning(
        svc: MetricsService) -> None:
    """Rows written before the API refused such latencies (or by an older replica): each is
    read at the nearest bound of what a latency can be, so every pass goes on."""
    now = T0 + timedelta(days=10)
    old = T0 + timedelta(days=1)  # past the raw retention at `now`
    wild = [math.inf, -math.inf, math.nan, 1e308, -5.0, MAX_LATENCY_MS * 10]
    svc.store.insert_events([EventRow("p", "d", "m", 1, old + timedelta(seconds=i), lat, "ok",
                                      None, None, f"w{i}", None, False)
                             for i, lat in enumerate(wild)])
    normal = _events(50, old, 600, seed=4)
    svc.store.insert_events(normal)
    out = svc.maintain(now)
    assert out["rolled"] == len(wild) + 50 and out["pruned_raw"] == len(wild) + 50
    start = old.replace(minute=0, second=0, microsecond=0)
    res = svc.query("p", "count", start, start + timedelta(hours=1), 3600)
    assert res.resolution == "1h" and res.series[0].points[0].value == len(wild) + 50
    p99 = svc.query("p", "latency_p99", start, start + timedelta(hours=1), 3600)
    assert p99.series[0].points[0].value == pytest.approx(MAX_LATENCY_MS, rel=0.05)
    # new events keep being rolled up after them
    svc.store.insert_events(_events(10, now - timedelta(hours=1), 600, seed=5))
    assert svc.maintain(now)["rolled"] == 10


def test_acknowledged_events_survive_a_crash(tmp_path: Path) -> None:
    """A process that stores events and dies without closing anything loses none of them."""
    path = tmp_path / "events.duckdb"
    script = textwrap.dedent(f"""
        import os
        from datetime import datetime, timedelta
        from modelyard.metrics._duck import DuckDbMetricsStore
        from modelyard.metrics.models import PredictionEvent
        from pathlib import Path
        store = DuckDbMetricsStore(Path({str(path)!r}))
        t0 = datetime(2026, 3, 2, 10)
        for b in range(3):
            n = store.insert_events([PredictionEvent(
                project="p", deployment="d", model="m", version=1, latency_ms=1.0,
                time=t0 + timedelta(seconds=i), request_id=f"r{{b}}-{{i}}") for i in range(500)])
            print("acknowledged", n, flush=True)
        os._exit(9)  # no close, no checkpoint
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr
    acknowledged = sum(int(line.split()[1]) for line in proc.stdout.splitlines())
    assert acknowledged == 1500
    store = DuckDbMetricsStore(path)
    try:
        assert len(store.events("p", T0, T0 + timedelta(hours=1), None, False)) == 1500
    finally:
        store.close()


def test_events_replicas_leave_in_the_metadata_db_are_imported_once(
        svc: MetricsService, db: Database) -> None:
    replica = SqlMetricsStore(db)  # what a serving replica writes to
    replica.insert_events(_events(120, T0, 600, deployment="replica"))
    svc.store.insert_events(_events(30, T0, 600, deployment="main"))
    assert svc.maintain(T0 + timedelta(hours=1))["imported"] == 120
    replica.insert_events(_events(5, T0, 600, seed=9, deployment="replica"))
    assert svc.maintain(T0 + timedelta(hours=1))["imported"] == 5
    assert svc.maintain(T0 + timedelta(hours=1))["imported"] == 0
    res = svc.query("p", "count", T0, T0 + timedelta(hours=1), 3600, "deployment")
    assert {s.group["deployment"]: s.points[0].value for s in res.series} == \
        {"main": 30, "replica": 125}
    assert len(replica.events("p", T0, T0 + timedelta(hours=1), None, True)) == 0


def test_the_background_loop_rolls_up_recorded_events(db: Database, tmp_path: Path) -> None:
    store = DuckDbMetricsStore(tmp_path / "loop.duckdb")
    svc = MetricsService(db, CollectorRegistry(), store=store,
                         settings=MetricsSettings(maintenance_interval_s=0.05))
    svc.start()
    try:
        svc.record(_events(50, T0, 600))
        deadline = time.monotonic() + 30
        while store.counts()["rollup_3600"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    store = DuckDbMetricsStore(tmp_path / "loop.duckdb")  # stop closed it; reopen the file
    assert store.roll_up() == 0  # the loop had folded every event into the rollups already
    hourly = store.cells("p", 3600, T0, T0 + timedelta(hours=1), 3600, None, True, None)
    assert int(hourly.n.sum()) == 50
    store.close()
