"""What the stores cannot keep never blocks what they can: unstorable events are set apart
(counted, logged once per pass), the events behind them are stored, and a store that is down
keeps everything buffered instead."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from modelyard.core.db import Database
from modelyard.core.errors import Unavailable
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics._outbox import Outbox
from modelyard.metrics.models import EventRow
from modelyard.metrics.service import MetricsService
from modelyard.metrics.store import MetricsStore, OutboxMetricsStore, SqlMetricsStore

T0 = datetime(2026, 4, 1, 9, 0, 0)

# values a caller inside the server could hand to `record`, each past what some store keeps
UNSTORABLE = {
    "version past 64 bits": {"version": 10**25},
    "version past 32 bits": {"version": 2**40},
    "negative version": {"version": -1},
    "time before year 1 in UTC": {"time": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))},
    "NaN latency": {"latency_ms": math.nan},
    "text version": {"version": "3"},
    "number label": {"label": 5},
}


def _event(i: int, **kw: object) -> EventRow:
    fields: dict[str, object] = {
        "project": "p", "deployment": "d", "model": "m", "version": 1,
        "time": T0 + timedelta(seconds=i), "latency_ms": 2.0, "outcome": "ok", "label": "a",
        "confidence": 0.5, "request_id": f"r{i}", "input_summary": {"mean": 0.5},
        "shadow": False}
    fields.update(kw)
    return EventRow(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    database.migrate("metrics@head")
    yield database
    database.dispose()


def _store(kind: str, db: Database, tmp_path: Path) -> MetricsStore:
    if kind == "duckdb":
        return DuckDbMetricsStore(tmp_path / "events.duckdb", outbox=SqlMetricsStore(db))
    return SqlMetricsStore(db) if kind == "database" else OutboxMetricsStore(db)


def _count(svc: MetricsService) -> float:
    out = svc.query("p", "count", T0, T0 + timedelta(hours=1), step_s=3600, resolution="raw")
    return out.series[0].points[0].value or 0.0


@pytest.mark.parametrize("kind", ["duckdb", "database", "outbox"])
def test_an_unstorable_event_is_set_apart_and_the_events_behind_it_are_stored(
        kind: str, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    svc = MetricsService(db, registry, store=_store(kind, db, tmp_path))
    bad = [_event(100 + i, request_id=f"bad-{i}", **kw)
           for i, kw in enumerate(UNSTORABLE.values())]
    svc.record([_event(0), _event(1), *bad, _event(2)])
    with caplog.at_level(logging.WARNING, logger="modelyard.metrics"):
        assert svc.flush() == 3
    lines = [r for r in caplog.records if "set apart" in r.getMessage()]
    assert len(lines) == 1  # one line for the pass, naming the first one and why
    assert "bad-0" in lines[0].getMessage() and "version" in lines[0].getMessage()
    assert registry.get_sample_value("modelyard_metrics_events_quarantined_total") == len(bad)
    # nothing is retried: the next events are stored, queries answer
    svc.record([_event(3)])
    assert svc.flush() == 1
    if kind == "outbox":  # a replica's: the owner imports them
        owner = DuckDbMetricsStore(tmp_path / "owner.duckdb", outbox=SqlMetricsStore(db))
        svc = MetricsService(db, CollectorRegistry(), store=owner)
        svc.maintain(T0)
    assert _count(svc) == 4
    svc.stop()


def test_events_a_replica_left_with_values_the_owner_cannot_keep_are_set_apart_on_import(
        db: Database, tmp_path: Path) -> None:
    """Chunks packed by a replica (any release) and rows of older replicas: the good events
    are imported, the others dropped once with a count, and the import goes on."""
    Outbox(db).put([_event(0), _event(1, version=10**25), _event(2)])
    SqlMetricsStore(db).insert_events([_event(3), _event(4, version=2**40)])
    Outbox(db).put([_event(5)])
    svc = MetricsService(db, CollectorRegistry(),
                         store=DuckDbMetricsStore(tmp_path / "e.duckdb",
                                                  outbox=SqlMetricsStore(db)))
    done = svc.maintain(T0)
    assert done["imported"] == 4 and done["quarantined"] == 2
    assert _count(svc) == 4
    with db.session() as s:  # nothing left behind to fail every later pass
        assert s.scalar(sa.text("SELECT count(*) FROM metrics_outbox")) == 0
        assert s.scalar(sa.text("SELECT count(*) FROM metrics_events")) == 0
    svc.stop()


def test_a_store_that_refuses_everything_keeps_events_buffered_not_set_apart(
        db: Database, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    svc = MetricsService(db, registry, store=SqlMetricsStore(db))
    with db.session() as s:
        s.execute(sa.text("ALTER TABLE metrics_events RENAME TO gone"))
    svc.record([_event(0), _event(1)])
    with pytest.raises(Unavailable):
        svc.flush()
    assert registry.get_sample_value("modelyard_metrics_events_quarantined_total") == 0
    with db.session() as s:
        s.execute(sa.text("ALTER TABLE gone RENAME TO metrics_events"))
    assert svc.flush() == 2
    assert _count(svc) == 2


def test_times_with_a_zone_are_stored_in_utc(db: Database, tmp_path: Path) -> None:
    svc = MetricsService(db, CollectorRegistry(), store=_store("duckdb", db, tmp_path))
    svc.record([_event(0, time=(T0 + timedelta(minutes=5)).replace(tzinfo=UTC)
                       .astimezone(timezone(timedelta(hours=-3))))])
    assert svc.flush() == 1
    assert _count(svc) == 1
    svc.stop()


def test_a_database_owner_moves_the_storable_events_of_a_chunk_and_sets_the_rest_apart(
        db: Database) -> None:
    Outbox(db).put([_event(0), _event(1, latency_ms=math.inf), _event(2)])
    Outbox(db).put([_event(3)])
    svc = MetricsService(db, CollectorRegistry(), store=SqlMetricsStore(db))
    assert svc.maintain(T0) == {"imported": 3, "quarantined": 1}
    assert _count(svc) == 3
    assert svc.maintain(T0) == {"imported": 0, "quarantined": 0}
