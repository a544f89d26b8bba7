"""The workflow store and engine on SQLite and PostgreSQL: one suite, both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelyard.core.blobs import ContentStore
from modelyard.core.blobs.local import LocalBlobStore
from modelyard.core.db import Database
from modelyard.core.errors import NotFound
from modelyard.core.settings import Settings
from modelyard.workflows.service import WorkflowService
from modelyard.workflows.store import WorkflowStore
from tests._servers.databases import BACKENDS, fresh_database
from tests.workflows._packages import count, register


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path) as database:
        yield database


def _service(db: Database, home: Path) -> WorkflowService:
    settings = Settings(home=home, security={"sandbox": "off"})  # type: ignore[arg-type]
    platform: Any = SimpleNamespace(cas=ContentStore(LocalBlobStore(home / "blobs")),
                                    settings=settings, datasets=None)  # Python steps only
    return WorkflowService(db, platform)


def test_pipeline_versions_accumulate_per_definition_hash(db: Database) -> None:
    store = WorkflowStore(db)
    defn = {"name": "cached", "params": {}, "steps": [
        {"name": n, "kind": "python", "inputs": {}, "params": []} for n in "acbd"]}
    first = store.upsert_pipeline("p", "cached", "m:a", "", "1" * 64, defn, "me")
    store.upsert_pipeline("p", "cached", "m:a", "", "2" * 64, defn, "me")
    store.upsert_pipeline("p", "cached", "m:a", "", "1" * 64, defn, "me")
    assert store.get_pipeline("p", "cached").id == first.id
    assert [v.hash for v in store.versions("p", "cached")] == ["1" * 64, "2" * 64]
    assert [s.name for s in first.steps] == ["a", "c", "b", "d"]
    with pytest.raises(NotFound):
        store.get_pipeline("q", "cached")


def test_a_trigger_cursor_only_moves_forward(db: Database) -> None:
    store = WorkflowStore(db)
    p = store.upsert_pipeline("p", "x", "m:a", "", "1" * 64, {}, "me")
    t = store.create_trigger(p, "event", None, "dataset.commit", {"dataset": "d"}, {}, True,
                             None, "me", {"version": 1})
    assert store.advance_cursor(t.id, "version", 1) is False
    assert store.advance_cursor(t.id, "version", 3) is True
    assert store.advance_cursor(t.id, "version", 2) is False
    assert store.get_trigger("p", t.id).cursor == {"version": 3}


def test_runs_cache_and_partial_reruns_on_each_backend(db: Database, tmp_path: Path) -> None:
    wf = _service(db, tmp_path / "home")
    work = str(tmp_path)
    register(wf, "cached", "p", "me")
    first = wf.wait("p", wf.run("p", "cached", {"workdir": work}, "me").id, 60)
    again = wf.wait("p", wf.run("p", "cached", {"workdir": work, "x": 2}, "me").id, 60)
    wf.engine.shutdown()
    assert first.state == again.state == "succeeded"
    assert {s.step: s.state for s in again.steps} == {
        "a": "succeeded", "b": "succeeded", "c": "cached", "d": "succeeded"}
    assert [count(work, s) for s in "abcd"] == [2, 2, 1, 2]
    assert [r.id for r in wf.list_runs("p", "cached")] == [again.id, first.id]


def test_two_engines_on_one_database_run_each_step_once(db: Database, tmp_path: Path) -> None:
    import threading

    first, second = _service(db, tmp_path / "home"), _service(db, tmp_path / "home")
    works = [tmp_path / f"w{i}" for i in range(3)]
    register(first, "cached", "p", "me")
    runs = []
    for w in works:
        w.mkdir()
        runs.append(first.run("p", "cached", {"workdir": str(w)}, "me").id)
    drivers = [threading.Thread(target=svc.wait, args=("p", run_id, 60))
               for run_id in runs for svc in (first, second)]
    for t in drivers:
        t.start()
    for t in drivers:
        t.join(90)
    first.engine.shutdown()
    second.engine.shutdown()
    assert [first.get_run("p", r).state for r in runs] == ["succeeded"] * 3
    for w in works:  # whichever engine drove a run, each of its steps ran once
        assert [count(str(w), s) for s in "abcd"] == [1, 1, 1, 1]
