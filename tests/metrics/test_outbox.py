"""The packed outbox: replicas' chunks reach the owning store exactly once, on SQLite and on a
real PostgreSQL, whether the owner keeps events in DuckDB or in the metadata DB."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import FailedPrecondition
from modelyard.metrics import _outbox
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics.models import OUTCOMES, Event, EventRow, PredictionEvent
from modelyard.metrics.store import OutboxMetricsStore, Retention, SqlMetricsStore
from modelyard.metrics.tables import MetricOutboxRow
from tests._servers.databases import BACKENDS, fresh_database

T0 = datetime(2026, 3, 2, 10, 0, 0)
NOW = T0 + timedelta(hours=2)
Stored = tuple[Any, ...]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path, "metrics@head") as database:
        yield database


@pytest.fixture
def duck(db: Database, tmp_path: Path) -> Iterator[DuckDbMetricsStore]:
    store = DuckDbMetricsStore(tmp_path / "events.duckdb", outbox=SqlMetricsStore(db))
    yield store
    store.close()


def _events(n: int, replica: str, seed: int = 0) -> list[Event]:
    """Events as serving records them (EventRow), every field varied, None where allowed."""
    rng = random.Random(seed)
    return [EventRow(
        project="p", deployment=f"d{i % 2}", model="m", version=1 + i % 3,
        time=T0 + timedelta(microseconds=rng.randrange(3_600_000_000)),
        latency_ms=rng.uniform(0.1, 200.0), outcome=OUTCOMES[i % 4],
        label=None if i % 7 == 0 else f"c{i % 5}",
        confidence=None if i % 11 == 0 else rng.random(), request_id=f"{replica}-{i}",
        input_summary=None if i % 4 == 0 else {"mean": rng.gauss(0, 1), "std": rng.random()},
        shadow=i % 9 == 0) for i in range(n)]


def _expected(events: list[Event]) -> list[Stored]:
    out = []
    for e in events:
        t = e.time.astimezone(UTC).replace(tzinfo=None) if e.time.tzinfo else e.time
        out.append((e.request_id, e.project, e.deployment, e.model, e.version, t,
                    e.latency_ms, e.outcome, e.label, e.confidence, e.shadow, e.input_summary))
    return sorted(out)


def _in_duckdb(duck: DuckDbMetricsStore) -> list[Stored]:
    """Every event in the DuckDB file, as `_expected` shapes them (duplicates kept)."""
    with duck._lock:
        rows = duck._con.execute(
            "SELECT request_id, project, deployment, model, version, time, latency_ms, outcome, "
            "label, confidence, shadow, input_summary, input_mean FROM events").fetchall()
    for r in rows:  # the derived column agrees with the summary it came from
        summary = json.loads(r[11]) if r[11] is not None else None
        assert r[12] == (summary["mean"] if summary else None)
    return sorted((*r[:11], json.loads(r[11]) if r[11] is not None else None) for r in rows)


def _in_table(db: Database) -> list[Stored]:
    """Every event in `metrics_events` (duplicates kept)."""
    return _expected([e for _, e in SqlMetricsStore(db).take(1_000_000)])


def _chunks_left(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(sa.select(MetricOutboxRow.batch_id)))


def test_replica_chunks_and_older_replica_rows_are_imported_into_duckdb_once(
        db: Database, duck: DuckDbMetricsStore) -> None:
    replica = OutboxMetricsStore(db)
    packed = _events(2_500, "new")  # three chunks
    aware = PredictionEvent(project="p", deployment="d0", model="m", version=7,
                            time=datetime(2026, 3, 2, 12, 30, tzinfo=timezone(timedelta(hours=2))),
                            latency_ms=3.5, request_id="aware", input_summary={"mean": 1})
    assert replica.insert_events([*packed, aware]) == 2_501
    assert len(_chunks_left(db)) == 3
    rows = _events(40, "old", seed=1)
    SqlMetricsStore(db).insert_events(rows)  # what a replica of the previous release writes
    assert duck.maintain(NOW, Retention())["imported"] == 2_541
    assert _in_duckdb(duck) == _expected([*packed, aware, *rows])
    assert _chunks_left(db) == [] and _in_table(db) == []
    assert duck.maintain(NOW, Retention())["imported"] == 0
    assert len(_in_duckdb(duck)) == 2_541


def test_two_replicas_writing_while_the_owner_imports_are_imported_once(
        db: Database, duck: DuckDbMetricsStore) -> None:
    replicas = [OutboxMetricsStore(Database(db.url)) for _ in range(2)]
    sent = {r: _events(3_000, f"r{r}", seed=r) for r in range(2)}
    writing = threading.Event()
    failures: list[BaseException] = []

    def write(r: int) -> None:
        try:
            for i in range(0, 3_000, 250):  # 250 events per flush, as a replica flushes
                replicas[r].insert_events(sent[r][i:i + 250])
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            failures.append(e)

    def own() -> None:
        try:
            while writing.is_set():
                duck.maintain(NOW, Retention())
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            failures.append(e)

    writing.set()
    threads = [threading.Thread(target=write, args=(r,)) for r in range(2)]
    owner = threading.Thread(target=own)
    owner.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    writing.clear()
    owner.join(120)
    for r in replicas:
        r.db.dispose()
    assert failures == []
    duck.maintain(NOW, Retention())
    assert _in_duckdb(duck) == _expected([*sent[0], *sent[1]])
    assert _chunks_left(db) == []


@pytest.mark.parametrize("restart", [False, True])
def test_a_crash_between_the_duckdb_commit_and_the_outbox_delete_repeats_and_loses_nothing(
        db: Database, duck: DuckDbMetricsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        restart: bool) -> None:
    replica = OutboxMetricsStore(db)
    first, second = _events(1_500, "a"), _events(700, "b", seed=2)
    replica.insert_events(first)
    assert duck.outbox is not None
    delete = duck.outbox.packed.delete
    calls: list[list[str]] = []

    def delete_failing_once(batch_ids: list[str]) -> None:
        calls.append(batch_ids)
        if len(calls) == 1:
            raise ConnectionError("the metadata DB went away")
        delete(batch_ids)

    monkeypatch.setattr(duck.outbox.packed, "delete", delete_failing_once)
    with pytest.raises(ConnectionError):
        duck.maintain(NOW, Retention())
    assert _in_duckdb(duck) == _expected(first)  # committed here, still in the outbox there
    assert len(_chunks_left(db)) == 2
    replica.insert_events(second)
    if restart:  # the process died: a new one opens the file
        duck.close()
        duck = DuckDbMetricsStore(tmp_path / "events.duckdb", outbox=SqlMetricsStore(db))
    assert duck.maintain(NOW, Retention())["imported"] == 700
    assert _in_duckdb(duck) == _expected([*first, *second])
    assert _chunks_left(db) == []
    if restart:
        duck.close()


def test_a_sql_owner_moves_chunks_into_its_table_once_and_answers_the_same_throughout(
        db: Database) -> None:
    owner, replica = SqlMetricsStore(db), OutboxMetricsStore(db)
    sent = _events(2_200, "r")
    replica.insert_events(sent)
    end = T0 + timedelta(hours=1)
    before = owner.events("p", T0, end, None, True)
    means_before = sorted(owner.input_means("p", "d1", T0, end).tolist())
    assert replica.maintain(NOW, Retention()) == {}  # a replica leaves them to the owner
    # so does a replica set to keep its events in the table: its main server may keep DuckDB,
    # which imports the chunks itself (moved into the table too, they would count twice)
    assert SqlMetricsStore(db, owner=False).maintain(NOW, Retention()) == {}
    assert len(_chunks_left(db)) == 3
    assert owner.maintain(NOW, Retention()) == {"imported": 2_200, "quarantined": 0}
    assert _in_table(db) == _expected(sent) and _chunks_left(db) == []
    assert owner.maintain(NOW, Retention()) == {"imported": 0, "quarantined": 0}
    after = owner.events("p", T0, end, None, True)
    key = lambda cols: sorted(zip(cols.time_s.tolist(), cols.latency_ms.tolist(),  # noqa: E731
                                  cols.label.tolist(), cols.deployment.tolist(), strict=True))
    assert key(before) == key(after) and len(after) == 2_200
    assert sorted(owner.input_means("p", "d1", T0, end).tolist()) == means_before
    assert means_before == sorted(e.input_summary["mean"] for e in sent if e.input_summary
                                  and e.deployment == "d1" and e.outcome == "ok"
                                  and not e.shadow)


def test_two_sql_owners_moving_at_once_insert_each_chunk_once(db: Database) -> None:
    sent = _events(6_000, "r")
    OutboxMetricsStore(db).insert_events(sent)
    owners = [SqlMetricsStore(Database(db.url)) for _ in range(2)]
    moved: list[int] = []
    go = threading.Barrier(2)

    def move(owner: SqlMetricsStore) -> None:
        go.wait()
        moved.append(owner.maintain(NOW, Retention())["imported"])

    threads = [threading.Thread(target=move, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for o in owners:
        o.db.dispose()
    assert sum(moved) == 6_000
    assert _in_table(db) == _expected(sent)


def _put_raw(db: Database, batch_id: str, payload: bytes) -> None:
    with db.session() as s:
        s.execute(sa.insert(MetricOutboxRow.__table__), [{
            "batch_id": batch_id, "created_at": T0, "n_events": 1, "first_time": T0,
            "last_time": T0, "payload": payload}])


BAD = {
    "obx_future": orjson.dumps({"v": 2, "events": []}),
    "obx_unversioned": orjson.dumps({"project": ["p"]}),
    "obx_garbage": b"\x00\x01 not json",
    "obx_short": orjson.dumps({"v": 1, "project": ["p"], "request_id": ["x", "y"]}),
}


def test_a_payload_this_server_cannot_read_is_refused_with_the_reason() -> None:
    with pytest.raises(FailedPrecondition, match="payload version 2 .* reads version 1"):
        _outbox.unpack(BAD["obx_future"], "obx_future")
    with pytest.raises(FailedPrecondition, match="not a packed payload"):
        _outbox.unpack(BAD["obx_garbage"], "obx_garbage")
    with pytest.raises(FailedPrecondition, match="unequal length"):
        _outbox.unpack(BAD["obx_short"], "obx_short")


@pytest.mark.parametrize("owner_kind", ["duckdb", "database"])
def test_unreadable_chunks_are_logged_and_kept_while_the_others_are_imported(
        db: Database, duck: DuckDbMetricsStore, caplog: pytest.LogCaptureFixture,
        owner_kind: str) -> None:
    replica = OutboxMetricsStore(db)
    good = _events(1_200, "good")
    replica.insert_events(good[:600])
    for batch_id, payload in BAD.items():
        _put_raw(db, batch_id, payload)
    replica.insert_events(good[600:])
    owner = duck if owner_kind == "duckdb" else SqlMetricsStore(db)
    caplog.set_level(logging.ERROR, "modelyard.metrics")
    assert owner.maintain(NOW, Retention())["imported"] == 1_200
    stored = _in_duckdb(duck) if owner_kind == "duckdb" else _in_table(db)
    assert stored == _expected(good)
    assert sorted(_chunks_left(db)) == sorted(BAD)  # not dropped: for a server that reads them
    assert "obx_future has payload version 2" in caplog.text
    for batch_id in BAD:
        assert batch_id in caplog.text
    assert owner.maintain(NOW, Retention())["imported"] == 0
    # queries skip them the same way
    assert len(replica.events("p", T0, T0 + timedelta(hours=1), None, True)) == \
        (0 if owner_kind == "duckdb" else 1_200)


def test_a_serving_replicas_recorded_events_reach_the_owners_queries(
        db: Database, duck: DuckDbMetricsStore, tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from modelyard.core.settings import MetricsSettings
    from modelyard.metrics.service import MetricsService

    replica = MetricsService(db, CollectorRegistry(), settings=MetricsSettings(),
                             home=tmp_path / "replica", role="serving")
    owner = MetricsService(db, CollectorRegistry(), store=duck)
    sent = _events(1_800, "r")
    replica.record(sent)
    assert replica.flush() == 1_800 and len(_chunks_left(db)) == 2
    assert owner.maintain(NOW)["imported"] == 1_800
    res = owner.query("p", "count", T0, T0 + timedelta(hours=1), 3600, "deployment",
                      include_shadow=True)
    assert {s.group["deployment"]: s.points[0].value for s in res.series} == \
        {d: sum(e.deployment == d for e in sent) for d in ("d0", "d1")}
    assert not (tmp_path / "replica").exists()  # a replica owns no file


def test_a_summary_orjson_cannot_write_is_packed_and_imported_as_json_writes_it(
        db: Database, duck: DuckDbMetricsStore) -> None:
    # an integer past 64 bits: orjson refuses it; a flush that failed on it would fail forever
    event = PredictionEvent(project="p", deployment="d1", model="m", version=1, time=T0,
                            latency_ms=1.5, outcome="ok", label="a", confidence=0.5,
                            request_id="req_big", input_summary={"mean": 0.5, "n": 2**70})
    OutboxMetricsStore(db).insert_events([event])
    assert duck.maintain(NOW, Retention())["imported"] == 1
    assert _chunks_left(db) == []
    got = duck.events("p", T0, T0 + timedelta(hours=1), None, True)
    assert got.latency_ms.tolist() == [1.5] and got.label.tolist() == ["a"]
    assert duck.input_means("p", "d1", T0, T0 + timedelta(hours=1)).tolist() == [0.5]
