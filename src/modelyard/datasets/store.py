"""Persistence of datasets, commits and snapshots. ORM rows never leave this module."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, Conflict, NotFound
from modelyard.datasets.models import Commit, Dataset, SnapshotRecord
from modelyard.datasets.tables import CommitRow, DatasetRow, SnapshotRow


class DatasetStore(abc.ABC):
    """Metadata of datasets. Returned objects are copies; every method is one transaction.

    `add_commit` is the point where a commit becomes visible: it succeeds only if the commit's
    version is exactly one past the dataset's head (else Conflict), so two writers never both
    win the same version.
    """

    @abc.abstractmethod
    def create_dataset(self, ds: Dataset) -> Dataset: ...

    @abc.abstractmethod
    def get_dataset(self, project: str, name: str) -> Dataset: ...

    @abc.abstractmethod
    def get_dataset_by_id(self, dataset_id: str) -> Dataset: ...

    @abc.abstractmethod
    def list_datasets(self, project: str, limit: int, after: str | None) -> list[Dataset]: ...

    @abc.abstractmethod
    def soft_delete(self, project: str, name: str, when: datetime) -> Dataset: ...

    @abc.abstractmethod
    def add_commit(self, commit: Commit) -> Commit: ...

    @abc.abstractmethod
    def list_commits(self, dataset_id: str) -> list[Commit]: ...

    @abc.abstractmethod
    def get_commit(self, dataset_id: str, version: int) -> Commit: ...

    @abc.abstractmethod
    def get_commit_by_id(self, commit_id: str) -> Commit: ...

    @abc.abstractmethod
    def add_snapshot(self, snap: SnapshotRecord) -> SnapshotRecord: ...

    @abc.abstractmethod
    def find_snapshot(self, dataset_id: str, commit_id: str, hash_: str) -> SnapshotRecord | None:
        """The snapshot of this commit with this hash (content, seed and fractions), if any."""

    @abc.abstractmethod
    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord: ...

    @abc.abstractmethod
    def list_snapshots(self, dataset_id: str) -> list[SnapshotRecord]: ...

    @abc.abstractmethod
    def pending_snapshots(self) -> list[SnapshotRecord]:
        """Every snapshot still `pending`, oldest first (work a restart must pick up again)."""

    @abc.abstractmethod
    def update_snapshot(self, snapshot_id: str, **fields: Any) -> SnapshotRecord: ...

    @abc.abstractmethod
    def delete_snapshot(self, snapshot_id: str) -> None: ...

    @abc.abstractmethod
    def all_datasets(self, project: str | None) -> list[Dataset]:
        """Every dataset, soft-deleted ones included (for garbage collection)."""

    @abc.abstractmethod
    def mark_collected(self, commit_ids: list[str], when: datetime) -> None: ...


class SqlDatasetStore(DatasetStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_dataset(self, ds: Dataset) -> Dataset:
        with self.db.session() as s:
            taken = s.scalar(sa.select(DatasetRow.id).where(
                DatasetRow.project == ds.project, DatasetRow.name == ds.name))
            if taken:
                raise AlreadyExists(
                    f"dataset {ds.name!r} already exists in project {ds.project!r}: pick another "
                    "name or commit to the existing one", {"field": "name", "value": ds.name})
            s.add(DatasetRow(id=ds.id, project=ds.project, name=ds.name, type=ds.type,
                             config=ds.config, description=ds.description,
                             created_at=ds.created_at, created_by=ds.created_by,
                             head_version=None, deleted_at=None))
        return ds

    def _live(self, s: Any, project: str, name: str) -> DatasetRow:
        row = s.scalar(sa.select(DatasetRow).where(
            DatasetRow.project == project, DatasetRow.name == name,
            DatasetRow.deleted_at.is_(None)))
        if row is None:
            raise NotFound(f"dataset {name!r} does not exist in project {project!r}: "
                           "list datasets to see the names", {"dataset": name})
        return row  # type: ignore[no-any-return]

    def get_dataset(self, project: str, name: str) -> Dataset:
        with self.db.session() as s:
            return _dataset(self._live(s, project, name))

    def get_dataset_by_id(self, dataset_id: str) -> Dataset:
        with self.db.session() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFound(f"dataset {dataset_id!r} does not exist")
            return _dataset(row)

    def list_datasets(self, project: str, limit: int, after: str | None) -> list[Dataset]:
        q = sa.select(DatasetRow).where(DatasetRow.project == project,
                                        DatasetRow.deleted_at.is_(None))
        if after:
            q = q.where(DatasetRow.name > after)
        with self.db.session() as s:
            return [_dataset(r) for r in s.scalars(q.order_by(DatasetRow.name).limit(limit))]

    def soft_delete(self, project: str, name: str, when: datetime) -> Dataset:
        with self.db.session() as s:
            row = self._live(s, project, name)
            row.deleted_at = when
            # The name is freed for a new dataset; the id and data stay for lineage and GC.
            row.name = f"{name}~deleted~{row.id}"
            return _dataset(row)

    def add_commit(self, commit: Commit) -> Commit:
        with self.db.session() as s:
            ds = s.get(DatasetRow, commit.dataset_id, with_for_update=True)
            if ds is None or ds.deleted_at is not None:
                raise NotFound(f"dataset {commit.dataset!r} does not exist")
            if (ds.head_version or 0) + 1 != commit.version:
                raise Conflict(
                    f"dataset {commit.dataset!r} moved to version {ds.head_version} while this "
                    "commit was written; retry the commit", {"head_version": ds.head_version})
            ds.head_version = commit.version
            s.add(CommitRow(
                id=commit.id, dataset_id=commit.dataset_id, version=commit.version,
                lance_version=commit.lance_version, operation=commit.operation,
                message=commit.message, author=commit.author, created_at=commit.created_at,
                tags=commit.tags, row_count=commit.row_count, rows_added=commit.rows_added,
                rows_removed=commit.rows_removed, content_hash=commit.content_hash,
                stats=commit.stats))
        return commit

    def list_commits(self, dataset_id: str) -> list[Commit]:
        with self.db.session() as s:
            ds = s.get(DatasetRow, dataset_id)
            rows = s.scalars(sa.select(CommitRow).where(CommitRow.dataset_id == dataset_id)
                             .order_by(CommitRow.version))
            return [_commit(r, ds.name if ds else "") for r in rows]

    def get_commit(self, dataset_id: str, version: int) -> Commit:
        with self.db.session() as s:
            row = s.scalar(sa.select(CommitRow).where(CommitRow.dataset_id == dataset_id,
                                                      CommitRow.version == version))
            if row is None:
                raise NotFound(f"version {version} does not exist; list the versions to see them",
                               {"version": version})
            ds = s.get(DatasetRow, dataset_id)
            return _commit(row, ds.name if ds else "")

    def get_commit_by_id(self, commit_id: str) -> Commit:
        with self.db.session() as s:
            row = s.get(CommitRow, commit_id)
            if row is None:
                raise NotFound(f"commit {commit_id!r} does not exist")
            ds = s.get(DatasetRow, row.dataset_id)
            return _commit(row, ds.name if ds else "")

    def add_snapshot(self, snap: SnapshotRecord) -> SnapshotRecord:
        with self.db.session() as s:
            s.add(SnapshotRow(**snap.model_dump()))
        return snap

    def find_snapshot(self, dataset_id: str, commit_id: str, hash_: str) -> SnapshotRecord | None:
        with self.db.session() as s:
            row = s.scalar(sa.select(SnapshotRow).where(SnapshotRow.dataset_id == dataset_id,
                                                        SnapshotRow.commit_id == commit_id,
                                                        SnapshotRow.hash == hash_))
            return _snapshot(row) if row else None

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord:
        with self.db.session() as s:
            row = s.get(SnapshotRow, snapshot_id)
            if row is None:
                raise NotFound(f"snapshot {snapshot_id!r} does not exist", {"snapshot": snapshot_id})
            return _snapshot(row)

    def list_snapshots(self, dataset_id: str) -> list[SnapshotRecord]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(SnapshotRow).where(SnapshotRow.dataset_id == dataset_id)
                             .order_by(SnapshotRow.created_at, SnapshotRow.id))
            return [_snapshot(r) for r in rows]

    def pending_snapshots(self) -> list[SnapshotRecord]:
        with self.db.session() as s:
            rows = s.scalars(sa.select(SnapshotRow).where(SnapshotRow.status == "pending")
                             .order_by(SnapshotRow.created_at, SnapshotRow.id))
            return [_snapshot(r) for r in rows]

    def update_snapshot(self, snapshot_id: str, **fields: Any) -> SnapshotRecord:
        with self.db.session() as s:
            row = s.get(SnapshotRow, snapshot_id)
            if row is None:
                raise NotFound(f"snapshot {snapshot_id!r} does not exist")
            for k, v in fields.items():
                setattr(row, k, v)
            return _snapshot(row)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.db.session() as s:
            s.execute(sa.delete(SnapshotRow).where(SnapshotRow.id == snapshot_id))

    def all_datasets(self, project: str | None) -> list[Dataset]:
        q = sa.select(DatasetRow).order_by(DatasetRow.id)
        if project is not None:
            q = q.where(DatasetRow.project == project)
        with self.db.session() as s:
            return [_dataset(r) for r in s.scalars(q)]

    def mark_collected(self, commit_ids: list[str], when: datetime) -> None:
        if not commit_ids:
            return
        with self.db.session() as s:
            s.execute(sa.update(CommitRow).where(CommitRow.id.in_(commit_ids))
                      .values(collected_at=when))


def _dataset(r: DatasetRow) -> Dataset:
    name = r.name.split("~deleted~", 1)[0]
    return Dataset(id=r.id, project=r.project, name=name, type=r.type, config=r.config or {},
                   description=r.description, created_at=r.created_at, created_by=r.created_by,
                   head_version=r.head_version, deleted_at=r.deleted_at)


def _commit(r: CommitRow, dataset: str) -> Commit:
    return Commit(id=r.id, dataset_id=r.dataset_id, dataset=dataset.split("~deleted~", 1)[0],
                  version=r.version, lance_version=r.lance_version,
                  operation=r.operation, message=r.message, author=r.author,  # type: ignore[arg-type]
                  created_at=r.created_at, tags=list(r.tags or []), row_count=r.row_count,
                  rows_added=r.rows_added, rows_removed=r.rows_removed,
                  content_hash=r.content_hash, stats=r.stats or {},
                  collected_at=r.collected_at)


def _snapshot(r: SnapshotRow) -> SnapshotRecord:
    return SnapshotRecord(id=r.id, dataset_id=r.dataset_id, commit_id=r.commit_id, hash=r.hash,
                          status=r.status, error=r.error, seed=r.seed,  # type: ignore[arg-type]
                          fractions=r.fractions, label_names=list(r.label_names or []),
                          split_sizes=dict(r.split_sizes or {}), splits_key=r.splits_key,
                          created_at=r.created_at, created_by=r.created_by)
