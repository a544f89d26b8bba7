"""Domain objects of the datasets component (what the service returns and the API speaks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

SnapshotStatus = Literal["pending", "ready", "failed"]
CommitMode = Literal["append", "overwrite", "delete", "replace"]


class Dataset(BaseModel):
    id: str
    project: str
    name: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    created_at: datetime
    created_by: str
    head_version: int | None = None  # newest commit's version number; None before the first
    deleted_at: datetime | None = None


class DatasetCreate(BaseModel):
    name: str = Field(max_length=100)
    type: str = Field(max_length=50)
    config: dict[str, Any] = Field(default_factory=dict)
    description: str = Field(default="", max_length=2000)


class DatasetPage(BaseModel):
    items: list[Dataset]
    next_page_token: str | None = None


class Commit(BaseModel):
    """One immutable version of a dataset."""

    id: str
    dataset_id: str
    dataset: str
    version: int  # 1, 2, 3... per dataset
    lance_version: int
    operation: CommitMode
    message: str
    author: str
    created_at: datetime
    tags: list[str] = Field(default_factory=list)
    row_count: int
    rows_added: int
    rows_removed: int
    content_hash: str
    stats: dict[str, Any] = Field(default_factory=dict)
    collected_at: datetime | None = None  # its rows were garbage-collected; metadata remains


class CommitRows(BaseModel):
    mode: CommitMode = "append"
    rows: list[dict[str, Any]] = Field(default_factory=list)
    where: str | None = Field(default=None, max_length=2000,
                              description="delete/replace: a Lance SQL filter")
    row_ids: list[str] | None = Field(default=None, description="delete/replace: these row ids")
    message: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return check_tags(v)


class ImportRequest(BaseModel):
    name: str = Field(max_length=100)
    source: str = Field(max_length=200, description="sklearn:digits|iris|wine|breast_cancer, "
                        "chatterbot:intents, or folder:<path> on the server")
    mode: Literal["append", "overwrite"] = "overwrite"
    message: str = Field(default="", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return check_tags(v)


class Diff(BaseModel):
    dataset: str
    from_version: int
    to_version: int
    rows_added: int
    rows_removed: int
    rows_unchanged: int
    label_counts_from: dict[str, int]
    label_counts_to: dict[str, int]
    label_change: dict[str, int]  # to - from, per label


class SnapshotRequest(BaseModel):
    version: int | None = Field(default=None, ge=1, description="a commit version; default newest")
    cutoff: datetime | None = Field(default=None, description="newest commit at or before this time")
    tags_all_of: list[str] = Field(default_factory=list)
    tags_any_of: list[str] = Field(default_factory=list)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"train", "validation", "test"}:
            raise ValueError("fractions must name exactly train, validation and test")
        if any(x < 0 for x in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError("fractions must be non-negative and sum to 1")
        return {k: float(v[k]) for k in ("train", "validation", "test")}


class Snapshot(BaseModel):
    """A pinned, split view of one commit; what a training job reads."""

    id: str
    project: str
    dataset: str
    dataset_id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    version: int
    commit_id: str
    hash: str
    status: SnapshotStatus
    error: str | None = None
    uri: str
    lance_version: int
    storage_options: dict[str, str] = Field(default_factory=dict)
    splits_uri: str | None = None
    seed: int
    fractions: dict[str, float]
    label_names: list[str] = Field(default_factory=list)
    split_sizes: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    created_by: str
    reused: bool = False


def check_tags(tags: list[str]) -> list[str]:
    for t in tags:
        if not isinstance(t, str) or not t or len(t) > 100 or any(c in t for c in ",\n\x00"):
            raise ValueError(f"tag {str(t)[:100]!r} must be 1-100 characters without commas or newlines")
    return sorted(set(tags))


class SnapshotRecord(BaseModel):
    """A snapshot as stored (the service adds where its data lives)."""

    id: str
    dataset_id: str
    commit_id: str
    hash: str
    status: SnapshotStatus
    error: str | None = None
    seed: int
    fractions: dict[str, float]
    label_names: list[str] = Field(default_factory=list)
    split_sizes: dict[str, int] = Field(default_factory=dict)
    splits_key: str | None = None
    created_at: datetime
    created_by: str


class GcReport(BaseModel):
    datasets_scanned: int = 0
    datasets_purged: int = 0  # soft-deleted datasets whose data is gone entirely
    commits_collected: int = 0
    snapshots_deleted: int = 0
    lance_versions_removed: int = 0
    orphan_files_removed: int = 0  # left by writers killed mid-commit
    bytes_freed: int = 0
    kept_for_lineage: list[str] = Field(default_factory=list)  # snapshot ids that lineage uses
