"""Dataset manager: typed, versioned datasets; immutable commits; reproducible training snapshots."""

from __future__ import annotations

from modelyard.datasets.models import Commit, Dataset, Diff, Snapshot, SnapshotRequest
from modelyard.datasets.types import TYPES, DatasetType, get_type

__all__ = ["TYPES", "Commit", "Dataset", "DatasetType", "Diff", "Snapshot", "SnapshotRequest",
           "get_type"]
