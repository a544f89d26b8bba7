"""Use cases of the datasets component: typed datasets, immutable commits, diffs, statistics.

Write order of a commit: rows are validated completely (nothing is written if any row is bad),
then Lance commits a new version atomically, then the metadata row makes it visible. Readers
only ever follow metadata rows, so a writer that dies between the two steps leaves a Lance
version nobody sees; the next commit rewinds past it (`LanceData.reset_to`).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.core.db import Database
from modelyard.core.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.core.events import EventBus
from modelyard.core.ids import check_name, new_id, utcnow
from modelyard.datasets import _filters, _lance, _splits, sources
from modelyard.datasets._gc import GarbageCollector, readable
from modelyard.datasets._ingest import Content, IngestStream
from modelyard.datasets._snapshots import SnapshotManager
from modelyard.datasets.models import (
    Commit,
    Dataset,
    DatasetCreate,
    DatasetPage,
    Diff,
    GcReport,
    ImportRequest,
    Snapshot,
    SnapshotRequest,
    check_tags,
)
from modelyard.datasets.store import DatasetStore, SqlDatasetStore
from modelyard.datasets.types import DatasetType, get_type

if TYPE_CHECKING:
    from modelyard.core.blobs import BlobStore
    from modelyard.registry.service import RegistryService

MAX_PAGE = 1000


class DatasetService:
    def __init__(self, db: Database, blobs: BlobStore, registry: RegistryService,
                 store: DatasetStore | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.registry = registry
        self.store = store or SqlDatasetStore(db)
        self.events = EventBus()  # the platform shares one bus between components
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.snapshots = SnapshotManager(self.store, blobs, self.data)
        self.gc = GarbageCollector(self.store, blobs, registry, self.data, self._lock)

    # ---- datasets -------------------------------------------------------------------------

    def create_dataset(self, project: str, body: DatasetCreate, actor: str) -> Dataset:
        check_name(body.name, "dataset name")
        get_type(body.type, body.config)  # validates the type and its config
        ds = Dataset(id=new_id("ds"), project=project, name=body.name, type=body.type,
                     config=body.config, description=body.description, created_at=utcnow(),
                     created_by=actor)
        return self.store.create_dataset(ds)

    def get_dataset(self, project: str, name: str) -> Dataset:
        return self.store.get_dataset(project, name)

    def list_datasets(self, project: str, limit: int = 50, page_token: str | None = None) -> DatasetPage:
        limit = max(1, min(limit, MAX_PAGE))
        items = self.store.list_datasets(project, limit + 1, page_token or None)
        more = len(items) > limit
        items = items[:limit]
        return DatasetPage(items=items, next_page_token=items[-1].name if more else None)

    def delete_dataset(self, project: str, name: str, actor: str) -> Dataset:
        """Soft delete: the name is freed; data stays until garbage collection."""
        return self.store.soft_delete(project, name, utcnow())

    # ---- commits --------------------------------------------------------------------------

    @contextmanager
    def _lock(self, dataset_id: str) -> Iterator[None]:
        """One writer per dataset: threads of this process queue on a lock, and other server
        processes on the same metadata database on `Database.exclusive`. Without it two
        processes could build on the same head, and one's recorded version would hold rows of
        a commit that was reported failed."""
        with self._locks_guard:
            local = self._locks.setdefault(dataset_id, threading.Lock())
        with local, self.db.exclusive(f"dataset:{dataset_id}"):
            yield

    def data(self, ds: Dataset) -> _lance.LanceData:
        key = f"datasets/{ds.project}/{ds.id}.lance"
        return _lance.LanceData(self.blobs.uri(key), self.blobs.storage_options)

    def commit_rows(self, project: str, name: str, rows: list[dict[str, Any]], actor: str,
                    mode: str = "append", message: str = "", tags: list[str] | None = None,
                    where: str | None = None, row_ids: list[str] | None = None) -> Commit:
        """Appends, overwrites, deletes or replaces rows as one new version; all-or-nothing.

        `replace` deletes the rows matching `where`/`row_ids` and appends `rows` in one version
        (an edit of some rows: the changed files of an image folder, corrected labels).
        """
        ds = self.store.get_dataset(project, name)
        kind = get_type(ds.type, ds.config)
        tags = _tags(tags)
        if mode == "delete":
            return self._delete(ds, kind, where, row_ids, actor, message, tags)
        if mode == "replace":
            if not rows:
                raise InvalidArgument("a replace needs the new `rows`; to only remove rows use "
                                      "mode=delete", {"field": "rows"})
            return self._delete(ds, kind, where, row_ids, actor, message, tags, _chunks(rows))
        if mode not in ("append", "overwrite"):
            raise InvalidArgument(f"unknown mode {mode!r}: use append, overwrite, delete or "
                                  "replace", {"field": "mode"})
        if where or row_ids:
            raise InvalidArgument("where/row_ids only apply to mode=delete or replace",
                                  {"field": "mode"})
        return self._write(ds, kind, _chunks(rows), mode, actor, message, tags)

    def commit_file(self, project: str, name: str, path: Path, fmt: str, actor: str,
                    mode: str = "append", message: str = "", tags: list[str] | None = None,
                    where: str | None = None, row_ids: list[str] | None = None) -> Commit:
        """Like `commit_rows`, reading the file in batches (it is never held whole); `replace`
        takes the file's rows as the new ones."""
        ds = self.store.get_dataset(project, name)
        kind = get_type(ds.type, ds.config)
        batches = sources.iter_file(path, fmt)
        if mode == "replace":
            return self._delete(ds, kind, where, row_ids, actor, message, _tags(tags), batches)
        if mode not in ("append", "overwrite"):
            raise InvalidArgument(f"unknown mode {mode!r}: a file is committed with append, "
                                  "overwrite or replace", {"field": "mode"})
        if where or row_ids:
            raise InvalidArgument("where/row_ids only apply to mode=replace",
                                  {"field": "mode"})
        return self._write(ds, kind, batches, mode, actor, message, _tags(tags))

    def import_builtin(self, project: str, req: ImportRequest, actor: str) -> Commit:
        """Creates the dataset when missing, then commits the source's rows."""
        type_, config, rows = sources.builtin(req.source)
        try:
            ds = self.store.get_dataset(project, req.name)
        except NotFound:
            ds = self.create_dataset(project, DatasetCreate(
                name=req.name, type=type_, config=config, description=f"imported from {req.source}"),
                actor)
        if ds.type != type_ or ds.config != config:
            raise FailedPrecondition(f"dataset {req.name!r} is a {ds.type} dataset with other "
                                     f"columns than the {type_} rows of {req.source}: import into "
                                     "a new dataset", {"field": "name"})
        return self.commit_rows(project, req.name, rows, actor, req.mode,
                                req.message or f"import {req.source}", req.tags)

    def _write(self, ds: Dataset, kind: DatasetType, batches: Iterable[list[dict[str, Any]]],
               mode: str, actor: str, message: str, tags: list[str]) -> Commit:
        data = self.data(ds)
        with self._lock(ds.id):
            ds = self.store.get_dataset_by_id(ds.id)
            head = self._head(ds)
            old: Counter[str] = Counter()
            reuse: dict[str, list[str]] | None = None
            if mode == "overwrite" and head is not None:
                ids = data.table(head.lance_version, ["row_id", "row_hash"])
                reuse = {}
                for rid, h in zip(ids.column(0).to_pylist(), ids.column(1).to_pylist(), strict=True):
                    reuse.setdefault(h, []).append(rid)
                old = Counter(ids.column(1).to_pylist())
            start = _content_of(head) if mode == "append" else Content()
            stream = IngestStream(kind, batches, start, reuse, require_rows=mode == "append")
            try:
                if mode == "overwrite":
                    data.reset_to(head.lance_version if head else None)
                    lance_version = data.overwrite(stream.reader())
                else:
                    lance_version = data.append(stream.reader(), head.lance_version if head else None)
            except Exception:
                if stream.failure is not None:  # our reader aborted the write: report why
                    raise stream.failure from None
                raise
            new = stream.new_hashes
            added, removed = ((sum((new - old).values()), sum((old - new).values()))
                              if mode == "overwrite" else (stream.content.count - start.count, 0))
            return self._record(ds, kind, data, head, lance_version, mode, actor, message, tags,
                                stream.content, added, removed)

    def _delete(self, ds: Dataset, kind: DatasetType, where: str | None, row_ids: list[str] | None,
                actor: str, message: str, tags: list[str],
                replacement: Iterable[list[dict[str, Any]]] | None = None) -> Commit:
        """Deletes the matching rows; with `replacement`, appends those rows in the same version.

        A delete that would remove nothing, and any commit naming a row id that is not in the
        newest version, is refused before Lance is touched: an empty version would only
        duplicate its parent. A replacement that fails validation leaves only an unrecorded
        Lance version behind, which the next commit skips (`LanceData.reset_to`): nothing of
        it becomes visible.
        """
        op = "delete" if replacement is None else "replace"
        if bool(where) == bool(row_ids):
            raise InvalidArgument(f"a {op} needs exactly one of `where` (a SQL filter) or "
                                  "`row_ids`", {"field": "where"})
        if row_ids:
            if any(not isinstance(r, str) or not r.isalnum() or len(r) > 40 for r in row_ids):
                raise InvalidArgument("row_ids must be row ids as returned by the rows API",
                                      {"field": "row_ids"})
            where = _filters.rows_with_ids(row_ids)
        else:
            where = _filters.to_lance(str(where))
        data = self.data(ds)
        with self._lock(ds.id):
            head = self._head(self.store.get_dataset_by_id(ds.id))
            if head is None:
                raise FailedPrecondition(f"dataset {ds.name!r} has no rows yet; nothing to delete")
            cols = ["row_id", "row_hash", *([kind.label_field] if kind.label_field else [])]

            def check(gone: Any) -> None:
                missing = sorted(set(row_ids or ()) - set(gone.column("row_id").to_pylist()))
                if missing:
                    raise FailedPrecondition(
                        f"{len(missing)} of the row ids are not in version {head.version} of "
                        f"{ds.name!r} (first {missing[0]!r}); list the rows again. Nothing "
                        "was committed", {"field": "row_ids", "missing": missing[:100]})
                if replacement is None and not gone.num_rows:
                    raise FailedPrecondition(
                        f"no row of version {head.version} of {ds.name!r} matches {where!r}; "
                        "nothing was committed", {"field": "where"})

            lance_version, gone = data.delete(str(where), head.lance_version, cols, check)
            after = _content_of(head).plus(kind, gone, -1)
            added = 0
            if replacement is not None:
                stream = IngestStream(kind, replacement, after)
                try:
                    lance_version = data.append(stream.reader(), lance_version)
                except Exception:
                    if stream.failure is not None:
                        raise stream.failure from None
                    raise
                added, after = stream.content.count - after.count, stream.content
            return self._record(ds, kind, data, head, lance_version, op, actor, message,
                                tags, after, added, gone.num_rows)

    def _head(self, ds: Dataset) -> Commit | None:
        return self.store.get_commit(ds.id, ds.head_version) if ds.head_version else None

    def _record(self, ds: Dataset, kind: DatasetType, data: _lance.LanceData, head: Commit | None,
                lance_version: int, mode: str, actor: str, message: str, tags: list[str],
                after: Content, rows_added: int, rows_removed: int) -> Commit:
        stats = _lance.statistics(kind, data, lance_version, after.count, after.labels)
        stats["content_sum"] = f"{after.total:064x}"
        commit = Commit(
            id=new_id("dcm"), dataset_id=ds.id, dataset=ds.name,
            version=(head.version if head else 0) + 1, lance_version=lance_version,
            operation=mode, message=message, author=actor,  # type: ignore[arg-type]
            created_at=utcnow(), tags=tags, row_count=after.count, rows_added=rows_added,
            rows_removed=rows_removed, content_hash=_lance.content_hash(after.total, after.count),
            stats=stats)
        stored = self.store.add_commit(commit)
        self.events.publish("dataset.commit", {"project": ds.project, "dataset": ds.name,
                                               "version": stored.version})
        return stored

    def start(self) -> None:
        """Background work left by the last process: snapshots still pending."""
        self.snapshots.resume_pending()

    def stop(self) -> None:
        self.snapshots.close()

    # ---- snapshots and garbage collection (see _snapshots.py, _gc.py) ----------------------

    def create_snapshot(self, project: str, name: str, req: SnapshotRequest, actor: str) -> Snapshot:
        """The snapshot of the newest commit matching `req`; an identical request (same content,
        seed and fractions) returns the existing one with `reused=True`."""
        return self.snapshots.create(project, name, req, actor)

    def get_snapshot(self, project: str, snapshot_id: str) -> Snapshot:
        return self.snapshots.get(project, snapshot_id)

    def record_use(self, project: str, snapshot_id: str, dst_kind: str, dst_id: str,
                   relation: str) -> None:
        """Lineage of a snapshot something read: the dataset version (`NAME@VERSION`, the
        commit) it pins, then the snapshot, then the reader. Recorded only on use, so a snapshot
        nothing read stays unreferenced and collectable."""
        snap = self.snapshots.get(project, snapshot_id)
        self.registry.add_edge(project, "dataset_version", f"{snap.dataset}@{snap.version}",
                               "dataset_snapshot", snap.id, "snapshot_of")
        self.registry.add_edge(project, "dataset_snapshot", snap.id, dst_kind, dst_id, relation)

    def sample_inputs(self, project: str, snapshot_id: str, split: str = "train",
                      limit: int = 2000, seed: int = 0) -> list[Any]:
        """Up to `limit` rows of one split of a ready snapshot (a seeded sample, in stored
        order), each as the raw input a model trained on it takes, what a client sends to
        predict (`DatasetType.model_input`). Read here, on the server, with its credentials.

        Raises NotFound (no such snapshot in `project`), FailedPrecondition (not ready, or its
        rows were garbage-collected), InvalidArgument (a type whose rows are no model input).
        """
        snap = self.snapshots.get(project, snapshot_id)
        if snap.status != "ready" or not snap.splits_uri:
            raise FailedPrecondition(f"snapshot {snapshot_id} is {snap.status}, not ready",
                                     {"snapshot": snapshot_id})
        kind = get_type(snap.type, snap.config)
        commit = readable(self.store.get_commit_by_id(snap.commit_id))
        positions = _splits.read_split(snap.splits_uri, self.blobs.storage_options, split)
        if len(positions) > limit:
            positions = sorted(random.Random(seed).sample(positions, max(limit, 0)))
        if not positions:
            return []
        lds = self.data(self.store.get_dataset_by_id(snap.dataset_id)).open(commit.lance_version)
        assert lds is not None
        rows = lds.take(positions, columns=[f.name for f in kind.schema()]).to_pylist()
        return [kind.model_input(r) for r in rows]

    def list_snapshots(self, project: str, name: str) -> list[Snapshot]:
        return self.snapshots.for_dataset(project, name)

    def retry_snapshot(self, project: str, snapshot_id: str) -> Snapshot:
        return self.snapshots.retry(project, snapshot_id)

    def collect_garbage(self, project: str | None = None, retention_s: float = 7 * 86400,
                        now: datetime | None = None) -> GcReport:
        return self.gc.collect(project, retention_s, now)

    # ---- reading versions -----------------------------------------------------------------

    def list_versions(self, project: str, name: str) -> list[Commit]:
        return self.store.list_commits(self.store.get_dataset(project, name).id)

    def get_version(self, project: str, name: str, version: int | None = None) -> Commit:
        ds = self.store.get_dataset(project, name)
        if version is None:
            version = ds.head_version
            if version is None:
                raise FailedPrecondition(f"dataset {name!r} has no commits yet: commit rows first")
        return self.store.get_commit(ds.id, version)

    def stats(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        c = self.get_version(project, name, version)
        shown = {k: v for k, v in c.stats.items() if k != "content_sum"}
        return {"dataset": name, "version": c.version, **shown}

    def rows(self, project: str, name: str, version: int | None = None, offset: int = 0,
             limit: int = 20) -> list[dict[str, Any]]:
        """A page of rows of one version; binary fields are summarized, not returned."""
        ds = self.store.get_dataset(project, name)
        c = readable(self.get_version(project, name, version))
        lds = self.data(ds).open(c.lance_version)
        assert lds is not None
        idx = list(range(max(0, offset), min(c.row_count, max(0, offset) + max(0, min(limit, 1000)))))
        if not idx:
            return []
        out = []
        for r in lds.take(idx).to_pylist():
            out.append({k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in r.items()})
        return out

    def diff(self, project: str, name: str, from_version: int, to_version: int) -> Diff:
        ds = self.store.get_dataset(project, name)
        a = readable(self.store.get_commit(ds.id, from_version))
        b = readable(self.store.get_commit(ds.id, to_version))
        data = self.data(ds)
        ha = Counter(data.column(a.lance_version, "row_hash"))
        hb = Counter(data.column(b.lance_version, "row_hash"))
        la: dict[str, int] = a.stats.get("label_counts", {})
        lb: dict[str, int] = b.stats.get("label_counts", {})
        change = {k: lb.get(k, 0) - la.get(k, 0) for k in sorted(set(la) | set(lb))}
        return Diff(dataset=name, from_version=a.version, to_version=b.version,
                    rows_added=sum((hb - ha).values()), rows_removed=sum((ha - hb).values()),
                    rows_unchanged=sum((ha & hb).values()), label_counts_from=la,
                    label_counts_to=lb, label_change={k: v for k, v in change.items() if v})


def _content_of(head: Commit | None) -> Content:
    if head is None:
        return Content()
    return Content(int(head.stats.get("content_sum", "0"), 16), head.row_count,
                   Counter(head.stats.get("label_counts", {})))


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def _tags(tags: list[str] | None) -> list[str]:
    try:
        return check_tags(list(tags or []))
    except ValueError as e:
        raise InvalidArgument(str(e), {"field": "tags"}) from e


__all__ = ["DatasetService"]
