"""One conformance suite for the dataset store, run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.datasets.models import Commit, Dataset, SnapshotRecord
from modelyard.datasets.store import DatasetStore, SqlDatasetStore
from tests._servers.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatasetStore]:
    with fresh_database(request, tmp_path) as db:
        yield SqlDatasetStore(db)


def _ds(name: str, project: str = "p") -> Dataset:
    return Dataset(id=new_id("ds"), project=project, name=name, type="generic",
                   config={"k": [1, 2]}, created_at=utcnow(), created_by="me")


def _commit(ds: Dataset, version: int) -> Commit:
    return Commit(id=new_id("dcm"), dataset_id=ds.id, dataset=ds.name, version=version,
                  lance_version=version, operation="append", message="m", author="me",
                  created_at=utcnow(), tags=["a"], row_count=version, rows_added=1,
                  rows_removed=0, content_hash="0" * 64, stats={"label_counts": {"x": 1}})


def test_create_get_list_and_names_are_unique_per_project(store: DatasetStore) -> None:
    a = store.create_dataset(_ds("a"))
    store.create_dataset(_ds("b"))
    store.create_dataset(_ds("a", project="q"))
    with pytest.raises(AlreadyExists):
        store.create_dataset(_ds("a"))
    got = store.get_dataset("p", "a")
    assert got.id == a.id and got.config == {"k": [1, 2]}
    assert [d.name for d in store.list_datasets("p", 10, None)] == ["a", "b"]
    assert [d.name for d in store.list_datasets("p", 10, "a")] == ["b"]
    with pytest.raises(NotFound):
        store.get_dataset("p", "zzz")


def test_soft_delete_hides_and_frees_the_name(store: DatasetStore) -> None:
    a = store.create_dataset(_ds("a"))
    store.soft_delete("p", "a", utcnow())
    with pytest.raises(NotFound):
        store.get_dataset("p", "a")
    assert store.get_dataset_by_id(a.id).deleted_at is not None
    assert store.get_dataset_by_id(a.id).name == "a"
    store.create_dataset(_ds("a"))
    assert len(store.list_datasets("p", 10, None)) == 1


def test_commits_advance_the_head_one_at_a_time(store: DatasetStore) -> None:
    ds = store.create_dataset(_ds("a"))
    store.add_commit(_commit(ds, 1))
    with pytest.raises(Conflict):
        store.add_commit(_commit(ds, 1))  # a second writer for the same version loses
    with pytest.raises(Conflict):
        store.add_commit(_commit(ds, 3))
    c2 = store.add_commit(_commit(ds, 2))
    assert store.get_dataset("p", "a").head_version == 2
    assert [c.version for c in store.list_commits(ds.id)] == [1, 2]
    assert store.get_commit(ds.id, 2).stats == {"label_counts": {"x": 1}}
    assert store.get_commit_by_id(c2.id).tags == ["a"]
    with pytest.raises(NotFound):
        store.get_commit(ds.id, 9)


def test_snapshots_are_unique_by_commit_and_content_hash(store: DatasetStore) -> None:
    ds = store.create_dataset(_ds("a"))
    c = store.add_commit(_commit(ds, 1))
    rec = SnapshotRecord(id=new_id("snap"), dataset_id=ds.id, commit_id=c.id, hash="h" * 64,
                         status="pending", seed=1, fractions={"train": 1.0, "validation": 0.0,
                                                              "test": 0.0},
                         created_at=utcnow(), created_by="me")
    store.add_snapshot(rec)
    with pytest.raises(AlreadyExists):
        store.add_snapshot(rec.model_copy(update={"id": new_id("snap")}))
    assert store.find_snapshot(ds.id, c.id, "h" * 64).id == rec.id  # type: ignore[union-attr]
    assert store.find_snapshot(ds.id, c.id, "x" * 64) is None
    c2 = store.add_commit(_commit(ds, 2))  # same content, another commit: its own snapshot
    assert store.find_snapshot(ds.id, c2.id, "h" * 64) is None
    other = store.add_snapshot(rec.model_copy(update={"id": new_id("snap"), "commit_id": c2.id}))
    assert store.find_snapshot(ds.id, c2.id, "h" * 64).id == other.id  # type: ignore[union-attr]
    done = store.update_snapshot(rec.id, status="ready", split_sizes={"train": 3})
    assert (done.status, done.split_sizes) == ("ready", {"train": 3})
    assert {s.id for s in store.list_snapshots(ds.id)} == {rec.id, other.id}
