"""MetricsStore conformance suite: the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from modelyard.core.db import Database
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics.models import Feedback, PredictionEvent
from modelyard.metrics.store import MetricsStore, OutboxMetricsStore, SqlMetricsStore
from tests._servers.databases import BACKENDS, fresh_database

T0 = datetime(2026, 3, 1, 8, 0, 0)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path, "metrics@head") as database:
        yield database


@pytest.fixture(params=["database", "outbox", "duckdb"])
def store(request: pytest.FixtureRequest, db: Database, tmp_path: Path) -> Iterator[MetricsStore]:
    if request.param == "database":
        yield SqlMetricsStore(db)
        return
    if request.param == "outbox":  # a serving replica's: packed chunks, read back unpacked
        yield OutboxMetricsStore(db)
        return
    duck = DuckDbMetricsStore(tmp_path / "events.duckdb", outbox=SqlMetricsStore(db))
    yield duck
    duck.close()


def _event(i: int, **kw: object) -> PredictionEvent:
    fields: dict[str, object] = {
        "project": "p", "deployment": "d", "model": "m", "version": 1,
        "time": T0 + timedelta(seconds=i), "latency_ms": float(i), "label": str(i % 3),
        "confidence": 0.5, "request_id": f"r{i}", "input_summary": {"mean": 0.1},
    }
    fields.update(kw)
    return PredictionEvent(**fields)  # type: ignore[arg-type]


def test_events_come_back_in_their_window_with_every_column(store: MetricsStore) -> None:
    assert store.insert_events([_event(i) for i in range(10)]) == 10
    cols = store.events("p", T0 + timedelta(seconds=2), T0 + timedelta(seconds=5), None, False)
    assert sorted(cols.latency_ms.tolist()) == [2.0, 3.0, 4.0]
    assert set(cols.deployment.tolist()) == {"d"} and set(cols.version.tolist()) == {1}
    assert min(cols.time_s.tolist()) == (T0 + timedelta(seconds=2) -
                                         datetime(1970, 1, 1)).total_seconds()


def test_projects_deployments_and_shadow_copies_are_kept_apart(store: MetricsStore) -> None:
    store.insert_events([_event(0), _event(1, project="q"), _event(2, deployment="e"),
                         _event(3, shadow=True)])
    end = T0 + timedelta(minutes=1)
    assert len(store.events("p", T0, end, None, False)) == 2
    assert len(store.events("p", T0, end, "e", False)) == 1
    assert len(store.events("p", T0, end, None, True)) == 3
    assert len(store.events("q", T0, end, None, True)) == 1


def test_feedback_joins_by_request_id_and_the_last_label_wins(store: MetricsStore) -> None:
    store.insert_events([_event(i) for i in range(4)])
    assert store.upsert_feedback("p", [Feedback(request_id="r1", label="x"),
                                       Feedback(request_id="r2", label="2")]) == 2
    store.upsert_feedback("p", [Feedback(request_id="r1", label="1")])
    store.upsert_feedback("q", [Feedback(request_id="r3", label="zzz")])  # other project
    cols = store.events("p", T0, T0 + timedelta(minutes=1), None, False)
    truth = dict(zip([f"r{int(x)}" for x in cols.latency_ms], cols.true_label, strict=True))
    assert truth == {"r0": None, "r1": "1", "r2": "2", "r3": None}


def test_input_means_are_those_of_ok_unshadowed_events_in_the_window(
        store: MetricsStore) -> None:
    store.insert_events([_event(0, input_summary={"mean": 1.5}),
                         _event(1, input_summary={"mean": -2}),
                         _event(2, input_summary={"mean": 9.0}, outcome="error"),
                         _event(3, input_summary={"mean": 9.0}, shadow=True),
                         _event(4, input_summary={"mean": 9.0}, deployment="e"),
                         _event(5, input_summary=None), _event(6, input_summary={"len": 3}),
                         _event(90, input_summary={"mean": 9.0})])
    means = store.input_means("p", "d", T0, T0 + timedelta(seconds=60))
    assert sorted(means.tolist()) == [-2.0, 1.5]


def test_an_empty_window_gives_empty_columns(store: MetricsStore) -> None:
    cols = store.events("p", T0, T0 + timedelta(hours=1), None, False)
    assert len(cols) == 0 and cols.latency_ms.size == 0


def test_alert_rules_keep_state_and_only_changes_in_history(db: Database) -> None:
    from modelyard.core.errors import AlreadyExists, NotFound
    from modelyard.metrics.alert_store import SqlAlertStore
    from modelyard.metrics.models import AlertRuleSpec

    alerts = SqlAlertStore(db)
    spec = AlertRuleSpec(name="slow", metric="latency_p95", threshold=100, deployment="d")
    made = alerts.create_rule("p", spec, "ana")
    assert made.state == "no_data" and made.spec == spec
    with pytest.raises(AlreadyExists):
        alerts.create_rule("p", spec, "ana")
    alerts.create_rule("q", spec, "bob")
    for i, state in enumerate(["firing", "firing", "ok"]):
        alerts.set_state(made.id, state, float(i), T0 + timedelta(seconds=i), f"m{i}")
    got = alerts.get_rule("p", "slow")
    assert got.state == "ok" and got.value == 2.0 and got.evaluated_at == T0 + timedelta(seconds=2)
    assert [(e.from_state, e.to_state, e.message) for e in alerts.history("p", "slow", 10)] == \
        [("firing", "ok", "m2"), ("no_data", "firing", "m0")]
    assert [r.project for r in alerts.rules(None)] == ["p", "q"]
    alerts.delete_rule("p", "slow")
    with pytest.raises(NotFound):
        alerts.get_rule("p", "slow")
    assert [r.project for r in alerts.rules(None)] == ["q"]


def test_events_are_stored_as_the_core_insert_of_the_table_stores_them(
        db: Database) -> None:
    import sqlalchemy as sa

    from modelyard.metrics.tables import MetricEventRow

    table = MetricEventRow.__table__
    events = [_event(1), _event(2, label=None, confidence=None, input_summary=None,
                                shadow=True, outcome="error"),
              _event(3, time=T0 + timedelta(microseconds=7)), _event(4, time=T0)]
    SqlMetricsStore(db).insert_events(events)
    cols = [c for c in table.c if c.name != "id"]
    with db.session() as s:
        s.execute(sa.insert(table), [{c.name: getattr(e, c.name) for c in cols}
                                     for e in events])
        stored = s.execute(sa.text(f"SELECT {', '.join(c.name for c in cols)} FROM "
                                   f"{table.name} ORDER BY id")).all()
    assert len(stored) == 8
    # the same values; on SQLite the same bytes, times included (they compare as strings),
    # except that orjson writes the summaries' JSON (which reads back the same)
    summary, when = cols.index(table.c.input_summary), cols.index(table.c.time)

    def read(row: object) -> tuple[object, ...]:
        values = list(row)  # type: ignore[call-overload]
        if isinstance(values[summary], str):
            values[summary] = json.loads(values[summary])
        return tuple(values)

    assert [read(r) for r in stored[:4]] == [read(r) for r in stored[4:]]
    if db.engine.dialect.name == "sqlite":
        assert [r[when] for r in stored[:4]] == [
            "2026-03-01 08:00:01.000000", "2026-03-01 08:00:02.000000",
            "2026-03-01 08:00:00.000007", "2026-03-01 08:00:00.000000"]
        assert [r[summary] for r in stored[:4]] == ['{"mean":0.1}', None, '{"mean":0.1}',
                                                    '{"mean":0.1}']
