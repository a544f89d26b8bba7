"""Retention and garbage collection of dataset data.

What is kept: every commit newer than the retention window, the head of every live dataset,
and any commit behind a snapshot that lineage references (a job read it, a model was trained
on it): those are never collected, however old. Everything else loses its rows (its metadata
and statistics stay, marked `collected_at`). A soft-deleted dataset past retention with nothing
referenced is purged whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.errors import NotFound
from modelyard.core.ids import utcnow
from modelyard.datasets._lance import LanceData
from modelyard.datasets.models import Commit, Dataset, GcReport

if TYPE_CHECKING:
    from modelyard.core.blobs import BlobStore
    from modelyard.datasets.store import DatasetStore

log = logging.getLogger("modelyard.datasets")


class GarbageCollector:
    def __init__(self, store: DatasetStore, blobs: BlobStore, registry: object,
                 data: Callable[[Dataset], LanceData],
                 lock: Callable[[str], AbstractContextManager[object]]) -> None:
        self.store = store
        self.blobs = blobs
        self.registry = registry
        self.data = data
        self._lock = lock

    def collect(self, project: str | None = None,
                        retention_s: float = 7 * 86400, now: datetime | None = None) -> GcReport:
        now = now or utcnow()
        cutoff = now - timedelta(seconds=retention_s)
        report = GcReport()
        for ds in self.store.all_datasets(project):
            report.datasets_scanned += 1
            with self._lock(ds.id):
                self._collect_one(ds, cutoff, now, report)
        return report

    def _lineage_uses(self, project: str, snapshot_id: str) -> bool:
        check = getattr(self.registry, "is_referenced", None)
        if check is None:  # no way to ask: assume it is used, never collect it
            return True
        return bool(check(project, "dataset_snapshot", snapshot_id))

    def _collect_one(self, ds: Dataset, cutoff: datetime, now: datetime,
                     report: GcReport) -> None:
        commits = [c for c in self.store.list_commits(ds.id) if c.collected_at is None]
        snaps = self.store.list_snapshots(ds.id)
        used = {s.id for s in snaps if self._lineage_uses(ds.project, s.id)}
        report.kept_for_lineage += sorted(used)
        keep: set[str] = {s.commit_id for s in snaps if s.id in used}
        if ds.deleted_at is None or ds.deleted_at >= cutoff:
            keep |= {c.id for c in commits if c.created_at >= cutoff}
            if ds.deleted_at is None and ds.head_version is not None:
                keep |= {c.id for c in commits if c.version == ds.head_version}
        gone = [c for c in commits if c.id not in keep]
        gone_ids = {c.id for c in gone}
        for s in snaps:
            if s.id not in used and (s.commit_id in gone_ids or ds.deleted_at is not None
                                     and ds.deleted_at < cutoff):
                if s.splits_key:
                    self._delete_blob(s.splits_key)
                self.store.delete_snapshot(s.id)
                report.snapshots_deleted += 1
        data = self.data(ds)
        kept_versions = {c.lance_version for c in commits if c.id in keep}
        if not kept_versions and ds.deleted_at is not None and ds.deleted_at < cutoff:
            self._delete_blob(f"datasets/{ds.project}/{ds.id}.lance")
            report.datasets_purged += 1
        elif data.exists():
            self._remove_versions(data, kept_versions, report)
        self.store.mark_collected([c.id for c in gone], now)
        report.commits_collected += len(gone)

    def _remove_versions(self, data: LanceData, kept: set[int],
                         report: GcReport) -> None:
        lds = data.open()
        assert lds is not None
        latest = lds.version
        drop = [v["version"] for v in lds.versions() if v["version"] not in kept and v["version"] != latest]
        if drop:
            stats = lds.cleanup_old_versions(versions=drop, error_if_tagged_old_versions=False)
            report.lance_versions_removed += int(stats.old_versions)
            report.bytes_freed += int(stats.bytes_removed)
        # What a writer killed mid-commit leaves: data files no version references, and Lance's
        # half-written staging files (data/.tmp*). Lance keeps the former for 7 days in case a
        # write is still going on; none is, since we hold the dataset's writer lock (threads
        # and other server processes alike), so both go now. No version is removed here.
        stats = lds.cleanup_old_versions(older_than=timedelta(days=365 * 100),
                                         delete_unverified=True,
                                         error_if_tagged_old_versions=False)
        report.orphan_files_removed += int(stats.data_files_removed)
        report.bytes_freed += int(stats.bytes_removed)
        report.bytes_freed += self._remove_staging(data, report)

    @staticmethod
    def _remove_staging(data: LanceData, report: GcReport) -> int:
        """Lance stages a data file as data/.tmpXXXXXX before renaming it (local disks only;
        on S3 a killed writer leaves an incomplete multipart upload, which the bucket's
        lifecycle rule for those removes)."""
        root = Path(data.uri) / "data"
        if "://" in data.uri or not root.is_dir():
            return 0
        freed = 0
        for f in root.glob(".tmp*"):
            try:
                size = f.stat().st_size
                f.unlink()
            except FileNotFoundError:
                continue
            freed += size
            report.orphan_files_removed += 1
        return freed

    def _delete_blob(self, key: str) -> None:
        try:
            self.blobs.delete(key)
        except NotFound:
            pass


def readable(commit: Commit) -> Commit:
    """The commit, if its rows still exist."""
    if commit.collected_at is not None:
        from modelyard.core.errors import FailedPrecondition

        raise FailedPrecondition(
            f"version {commit.version} of {commit.dataset!r} was garbage-collected on "
            f"{commit.collected_at:%Y-%m-%d}; its statistics remain but its rows are gone",
            {"version": commit.version})
    return commit
