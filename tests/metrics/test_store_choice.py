"""Which event store a process gets, and the settings that choose it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.db import Database
from modelyard.core.settings import MetricsSettings, Settings
from modelyard.metrics._duck import DuckDbMetricsStore
from modelyard.metrics.models import PredictionEvent
from modelyard.metrics.service import open_event_store
from modelyard.metrics.store import OutboxMetricsStore, SqlMetricsStore
from tests.conftest import bearer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta' / 'modelyard.db'}")
    yield database
    database.dispose()


def test_the_main_server_owns_a_duckdb_file_under_its_data_dir(db: Database,
                                                               tmp_path: Path) -> None:
    store = open_event_store(db, MetricsSettings(), tmp_path / "home", "all")
    assert isinstance(store, DuckDbMetricsStore)
    assert store.path == tmp_path / "home" / "metrics" / "events.duckdb"
    assert store.path.exists()
    store.close()
    # no data dir given: beside the SQLite metadata DB
    store = open_event_store(db, MetricsSettings(), None, "all")
    assert isinstance(store, DuckDbMetricsStore)
    assert store.path == (tmp_path / "meta" / "metrics" / "events.duckdb").resolve()
    store.close()


def test_replicas_and_the_database_setting_keep_events_in_the_metadata_db(
        db: Database, tmp_path: Path) -> None:
    # a replica packs its events into the outbox; the database setting keeps rows (and moves
    # replicas' chunks into them), for a replica as for the main server
    assert type(open_event_store(db, MetricsSettings(), tmp_path, "serving")) is \
        OutboxMetricsStore
    for role in ("all", "serving"):
        store = open_event_store(db, MetricsSettings(store="database"), tmp_path, role)
        assert type(store) is SqlMetricsStore
        assert store.owner is (role == "all")  # only the main server moves replicas' chunks
    assert not (tmp_path / "metrics").exists()


def test_retention_comes_from_settings_and_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_METRICS__RAW_RETENTION_DAYS", "2")
    monkeypatch.setenv("MODELYARD_METRICS__ROLLUP_1H_RETENTION_DAYS", "730")
    s = Settings()
    assert (s.metrics.raw_retention_days, s.metrics.rollup_1m_retention_days,
            s.metrics.rollup_1h_retention_days) == (2, 30, 730)
    with pytest.raises(ValueError):
        MetricsSettings(raw_retention_days=0)


def test_the_api_says_which_resolution_answered(api: TestClient, admin_token: str) -> None:
    t0 = datetime(2026, 3, 2, 10)
    platform = api.app.state.platform  # type: ignore[attr-defined]
    api.post("/api/v1/projects", json={"name": "alpha"}, headers=bearer(admin_token))
    platform.metrics.ingest("alpha", [PredictionEvent(
        deployment="d", model="m", version=1, time=t0 + timedelta(seconds=i), latency_ms=2.0,
        request_id=f"r{i}") for i in range(90)])
    platform.metrics.maintain(t0 + timedelta(hours=1))
    url = "/api/v1/projects/alpha/metrics/query"
    params = {"metric": "count", "start": t0.isoformat(),
              "end": (t0 + timedelta(hours=1)).isoformat(), "step_s": 3600}
    for resolution, want in [("auto", "1h"), ("1m", "1m"), ("raw", "raw")]:
        r = api.get(url, params={**params, "resolution": resolution},
                    headers=bearer(admin_token))
        assert r.status_code == 200, r.text
        assert r.json()["resolution"] == want
        assert r.json()["series"][0]["points"][0]["value"] == 90
    r = api.get(url, params={**params, "step_s": 90, "resolution": "1m"},
                headers=bearer(admin_token))
    assert r.status_code == 400 and "multiples of 60" in r.json()["error"]["message"]


def test_a_second_process_on_the_same_data_dir_hands_its_events_to_the_owner(
        db: Database, tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from modelyard.metrics._duck import DuckDbMetricsStore
        store = DuckDbMetricsStore(Path({str(tmp_path / "metrics" / "events.duckdb")!r}))
        print("open", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "open"
        store = open_event_store(db, MetricsSettings(), tmp_path, "all")
        assert type(store) is OutboxMetricsStore  # leaves the chunks to the owner's import
    finally:
        owner.communicate("", timeout=60)
