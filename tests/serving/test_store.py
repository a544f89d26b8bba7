"""DeploymentStore conformance suite: the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.serving.store import DeploymentStore, SqlDeploymentStore
from tests._servers.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path, "serving@head") as database:
        yield database


@pytest.fixture
def store(db: Database) -> DeploymentStore:
    return SqlDeploymentStore(db)


FIELDS = {"model_ref": "digits@production", "traffic": {"1": 90, "2": 10},
          "shadow_version": 3, "batching": {"max_batch_size": 8},
          "rollback": {"max_error_rate": 0.1}, "pinned": True}


def test_create_get_list_update_delete(store: DeploymentStore) -> None:
    made = store.create("p", "d", FIELDS, "ana")
    assert made.model == "digits" and made.traffic == {"1": 90, "2": 10}
    assert made.batching.max_batch_size == 8 and made.rollback is not None
    assert made.rollback.max_error_rate == 0.1 and made.pinned and made.created_by == "ana"
    assert store.get("p", "d") == made
    store.create("q", "d", {**FIELDS, "traffic": None, "rollback": None}, "bob")
    assert [d.project for d in store.list_deployments(None)] == ["p", "q"]
    assert [d.name for d in store.list_deployments("q")] == ["d"]
    updated = store.update("p", "d", {"traffic": {"1": 100}, "pinned": False})
    assert updated.traffic == {"1": 100} and not updated.pinned
    assert updated.model_ref == made.model_ref and updated.updated_at >= made.updated_at
    store.delete("p", "d")
    with pytest.raises(NotFound):
        store.get("p", "d")
    assert [d.project for d in store.list_deployments(None)] == ["q"]


def test_names_are_unique_per_project(store: DeploymentStore) -> None:
    store.create("p", "d", FIELDS, "ana")
    with pytest.raises(AlreadyExists):
        store.create("p", "d", FIELDS, "ana")
    with pytest.raises(NotFound):
        store.update("p", "nope", {"pinned": True})
    with pytest.raises(NotFound):
        store.delete("p", "nope")


def test_events_are_listed_newest_first(store: DeploymentStore) -> None:
    store.create("p", "d", FIELDS, "ana")
    store.add_event("p", "d", "rollback", "back to 1", {"canary": 2})
    store.add_event("p", "other", "created", "x", {})
    events = store.events("p", "d", 10)
    assert [e.kind for e in events] == ["rollback", "created"]
    assert events[0].details == {"canary": 2}
    assert len(store.events("p", "d", 1)) == 1
