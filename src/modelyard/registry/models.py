"""Domain objects of the registry: runs, metric points, artifacts, model versions, lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUN_STATUSES = ("running", "finished", "failed", "killed")
NODE_KINDS = ("dataset_version", "dataset_snapshot", "code", "job", "run", "study",
              "model_version", "deployment", "pipeline_run", "prediction")
NodeKind = Literal["dataset_version", "dataset_snapshot", "code", "job", "run", "study",
                   "model_version", "deployment", "pipeline_run", "prediction"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Run(_Frozen):
    id: str
    project: str
    experiment: str
    status: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]  # the latest value of each series
    job_id: str | None
    code_hash: str | None
    dataset_snapshot: str | None
    user: str
    created_at: datetime
    ended_at: datetime | None


class MetricPoint(_Frozen):
    key: str
    step: int
    value: float
    time: float  # seconds since the epoch


class RunSearchResult(_Frozen):
    """One page of runs; each item holds only the fields asked for (all when none were)."""

    runs: list[dict[str, Any]]
    next_page_token: str | None


class Artifact(_Frozen):
    digest: str  # hex sha256 of the bytes
    size: int
    media_type: str
    name: str
    created_at: datetime
    created_by: str


class Model(_Frozen):
    name: str
    project: str
    latest_version: int
    aliases: dict[str, int]
    created_at: datetime
    created_by: str


class ModelVersion(_Frozen):
    id: str
    project: str
    model: str
    version: int
    artifacts: dict[str, str]  # name -> sha256
    framework: str
    signature: dict[str, Any]
    preprocessing: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    run_id: str | None
    job_id: str | None
    dataset_snapshot_id: str | None
    code_hash: str | None
    aliases: list[str]
    created_at: datetime
    created_by: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    archived_at: datetime | None = None  # archived: kept, but no new alias may point at it

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


class AliasMove(_Frozen):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    moved_at: datetime
    # False when the alias already pointed at that version: nothing was recorded or announced
    moved: bool = True


class LineageNode(_Frozen):
    kind: str
    id: str
    attrs: dict[str, Any] = Field(default_factory=dict)


class LineageEdge(_Frozen):
    src_kind: str
    src_id: str
    dst_kind: str
    dst_id: str
    relation: str
    created_at: datetime | None = None  # when it was recorded (a prediction's: its time)


class LineageGraph(_Frozen):
    root: LineageNode
    direction: Literal["upstream", "downstream"]
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class GcReport(_Frozen):
    artifact_rows_deleted: int
    blobs_deleted: int
    bytes_freed: int


# Request bodies of the REST API.
class RunCreate(BaseModel):
    experiment: str = "default"
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    job_id: str | None = None
    code_hash: str | None = None
    dataset_snapshot: str | None = None


class RunFinish(BaseModel):
    status: str = "finished"


class MetricPointIn(BaseModel):
    key: str
    step: int = 0
    value: float
    time: float | None = None


class MetricBatch(BaseModel):
    points: list[MetricPointIn] = Field(max_length=100_000)


class RunSearch(BaseModel):
    filter: str | list[dict[str, Any]] | None = None
    order_by: list[str] | None = None
    limit: int = Field(50, ge=1, le=1000)
    page_token: str | None = None
    fields: list[str] | None = None
    experiment: str | None = None


class ModelCreate(BaseModel):
    name: str


class VersionCreate(BaseModel):
    artifacts: dict[str, str] = Field(default_factory=dict)
    framework: str = "onnx"
    signature: dict[str, Any] = Field(default_factory=dict)
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] | None = None  # default: the run's params
    run_id: str | None = None
    job_id: str | None = None
    dataset_snapshot_id: str | None = None
    code_hash: str | None = None


class VersionUpdate(BaseModel):
    """Fields to change; those left out keep their value."""

    description: str | None = Field(default=None, max_length=10_000)
    tags: dict[str, str] | None = Field(default=None, description="replaces every tag")
    archived: bool | None = Field(default=None, description="archive (true) or restore (false)")


class RunCompare(BaseModel):
    run_ids: list[str] = Field(min_length=2, max_length=100)


class MetricSummary(_Frozen):
    last: float
    min: float
    max: float
    steps: int  # points logged


class RunComparison(_Frozen):
    """Runs side by side: every param (None where a run lacks it), which params differ, and
    a summary of each metric series per run."""

    runs: list[Run]
    params: dict[str, list[Any]]  # key -> one value per run, in `runs` order
    differing_params: list[str]
    metrics: dict[str, list[MetricSummary | None]]  # key -> one summary per run


class AliasSet(BaseModel):
    version: int = Field(ge=1)


class EdgeCreate(BaseModel):
    src_kind: NodeKind
    src_id: str = Field(min_length=1, max_length=200)
    dst_kind: NodeKind
    dst_id: str = Field(min_length=1, max_length=200)
    relation: str = Field("derived_from", min_length=1, max_length=100)
