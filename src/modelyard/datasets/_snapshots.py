"""Snapshot use cases: pick a commit, split it deterministically, pin it for training."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import TYPE_CHECKING

from modelyard.core.errors import FailedPrecondition, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.datasets import _splits
from modelyard.datasets.models import Commit, Dataset, Snapshot, SnapshotRecord, SnapshotRequest

if TYPE_CHECKING:
    from modelyard.core.blobs import BlobStore
    from modelyard.datasets._lance import LanceData
    from modelyard.datasets.store import DatasetStore

log = logging.getLogger("modelyard.datasets")


class SnapshotManager:
    """The snapshot use cases of `DatasetService`.

    Snapshots of up to `inline_rows` rows are materialized within the request (they take
    milliseconds); larger ones answer `pending` and a background thread makes them `ready` or
    `failed`. A server restart picks up every snapshot left `pending` (`resume_pending`); a
    failed one can be retried.
    """

    def __init__(self, store: DatasetStore, blobs: BlobStore,
                 data: Callable[[Dataset], LanceData], inline_rows: int = 20_000) -> None:
        self.store = store
        self.blobs = blobs
        self.data = data
        self.inline_rows = inline_rows
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: set[str] = set()
        self._inflight_guard = threading.Lock()

    def _submit(self, snapshot_id: str) -> None:
        with self._inflight_guard:
            if snapshot_id in self._inflight:
                return
            self._inflight.add(snapshot_id)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshots")

        def run() -> None:
            try:
                self.materialize(snapshot_id)
            finally:
                with self._inflight_guard:
                    self._inflight.discard(snapshot_id)

        self._pool.submit(run)

    def resume_pending(self) -> int:
        """Queues every snapshot left `pending` (its worker died with the last process)."""
        pending = self.store.pending_snapshots()
        for rec in pending:
            self._submit(rec.id)
        if pending:
            log.info("resuming %d pending snapshot(s)", len(pending))
        return len(pending)

    def close(self) -> None:
        """Stops the background workers; a snapshot cut short stays pending for the next start."""
        with self._inflight_guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def create(self, project: str, name: str, req: SnapshotRequest,
                        actor: str) -> Snapshot:
        """The snapshot of the newest commit matching the request; an identical request (same
        commit, seed and fractions) returns the existing snapshot with `reused=True`. Another
        commit with the same content gets its own snapshot, labelled with its own version,
        with the same `hash` and the same rows in each split."""
        ds = self.store.get_dataset(project, name)
        commit = _choose(self.store.list_commits(ds.id), req)
        h = _splits.snapshot_hash(ds.type, ds.config, commit.content_hash, req.seed, req.fractions)
        found = self.store.find_snapshot(ds.id, commit.id, h)
        if found is not None:
            return self._view(ds, found, reused=True)
        rec = SnapshotRecord(
            id=new_id("snap"), dataset_id=ds.id, commit_id=commit.id, hash=h, status="pending",
            seed=req.seed, fractions=req.fractions,
            label_names=sorted(commit.stats.get("label_counts", {})),
            created_at=utcnow(), created_by=actor)
        try:
            self.store.add_snapshot(rec)
        except Exception:
            found = self.store.find_snapshot(ds.id, commit.id, h)
            if found is None:
                raise
            return self._view(ds, found, reused=True)
        if commit.row_count <= self.inline_rows:
            return self._view(ds, self.materialize(rec.id))
        self._submit(rec.id)
        return self._view(ds, rec)

    def materialize(self, snapshot_id: str) -> SnapshotRecord:
        """Computes and stores the splits; marks the snapshot ready, or failed with the reason."""
        rec = self.store.get_snapshot(snapshot_id)
        ds = self.store.get_dataset_by_id(rec.dataset_id)
        commit = self.store.get_commit_by_id(rec.commit_id)
        key = f"datasets/{ds.project}/{ds.id}.snapshots/{rec.id}.lance"
        try:
            hashes = self.data(ds).column(commit.lance_version, "row_hash")
            parts = _splits.assign(hashes, rec.seed, rec.fractions)
            _splits.write_splits(self.blobs.uri(key), self.blobs.storage_options, parts)
        except Exception as e:
            log.exception("materializing snapshot %s failed", rec.id)
            return self.store.update_snapshot(rec.id, status="failed",
                                              error=f"{type(e).__name__}: {str(e)[:500]}")
        return self.store.update_snapshot(
            rec.id, status="ready", error=None, splits_key=key,
            split_sizes={k: len(v) for k, v in parts.items()})

    def retry(self, project: str, snapshot_id: str) -> Snapshot:
        rec, ds = self._owned(project, snapshot_id)
        with self._inflight_guard:
            busy = rec.id in self._inflight
        if rec.status == "ready" or busy:
            raise FailedPrecondition(f"snapshot {snapshot_id} is {rec.status}"
                                     f"{' and being materialized' if busy else ''}; only a failed "
                                     "or abandoned pending snapshot can be retried")
        rec = self.store.update_snapshot(rec.id, status="pending", error=None)
        commit = self.store.get_commit_by_id(rec.commit_id)
        if commit.row_count <= self.inline_rows:
            return self._view(ds, self.materialize(rec.id))
        self._submit(rec.id)
        return self._view(ds, rec)

    def get(self, project: str, snapshot_id: str) -> Snapshot:
        rec, ds = self._owned(project, snapshot_id)
        return self._view(ds, rec)

    def for_dataset(self, project: str, name: str) -> list[Snapshot]:
        ds = self.store.get_dataset(project, name)
        return [self._view(ds, r) for r in self.store.list_snapshots(ds.id)]

    def _owned(self, project: str, snapshot_id: str) -> tuple[SnapshotRecord, Dataset]:
        rec = self.store.get_snapshot(snapshot_id)
        ds = self.store.get_dataset_by_id(rec.dataset_id)
        if ds.project != project:
            raise NotFound(f"snapshot {snapshot_id!r} does not exist", {"snapshot": snapshot_id})
        return rec, ds

    def _view(self, ds: Dataset, rec: SnapshotRecord, reused: bool = False) -> Snapshot:
        commit = self.store.get_commit_by_id(rec.commit_id)
        data = self.data(ds)
        return Snapshot(
            id=rec.id, project=ds.project, dataset=ds.name, dataset_id=ds.id, type=ds.type,
            config=ds.config, version=commit.version, commit_id=commit.id, hash=rec.hash,
            status=rec.status, error=rec.error, uri=data.uri, lance_version=commit.lance_version,
            storage_options=public_storage_options(data.storage_options),
            splits_uri=self.blobs.uri(rec.splits_key) if rec.splits_key else None,
            seed=rec.seed, fractions=rec.fractions, label_names=rec.label_names,
            split_sizes=rec.split_sizes, created_at=rec.created_at, created_by=rec.created_by,
            reused=reused)


SECRET_OPTIONS = ("access_key_id", "secret_access_key", "session_token",
                  "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def public_storage_options(options: dict[str, str]) -> dict[str, str]:
    """Storage options without credentials: any viewer may read a snapshot; jobs get the
    credentials from their environment (MODELYARD_STORAGE_OPTIONS)."""
    return {k: v for k, v in options.items() if k not in SECRET_OPTIONS}


def _choose(commits: list[Commit], req: SnapshotRequest) -> Commit:
    cutoff = req.cutoff
    if cutoff is not None and cutoff.tzinfo is not None:
        cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
    matching = [
        c for c in commits
        if (req.version is None or c.version == req.version)
        and (cutoff is None or c.created_at <= cutoff)
        and all(t in c.tags for t in req.tags_all_of)
        and (not req.tags_any_of or any(t in c.tags for t in req.tags_any_of))
    ]
    fits = [c for c in matching if c.collected_at is None]
    if matching and not fits:  # it exists, but its rows are gone: say so, not "no match"
        gone = max(matching, key=lambda c: c.version)
        raise FailedPrecondition(
            f"version {gone.version} of {gone.dataset!r} matches, but it was garbage-collected "
            f"on {gone.collected_at:%Y-%m-%d}: its rows are gone. Snapshot a newer version; "
            "`dataset versions` marks the collected ones",
            {"version": gone.version, "collected_at": str(gone.collected_at)})
    if not fits:
        raise FailedPrecondition(
            "no commit matches the snapshot request (version, cutoff, tags); list the versions "
            "and loosen the filter", {"version": req.version, "tags_all_of": req.tags_all_of,
                                      "tags_any_of": req.tags_any_of})
    return max(fits, key=lambda c: c.version)
