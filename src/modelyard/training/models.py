"""Domain objects of the training component: job specs, jobs, trainers, quotas."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class JobState(str, enum.Enum):
    queued = "queued"
    scheduled = "scheduled"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.succeeded, JobState.failed, JobState.cancelled)


ACTIVE_STATES = (JobState.scheduled, JobState.running)


class Resources(BaseModel):
    """What one job needs; `cpu`, `gpu` and `memory_mb` are per worker, admitted all at once.

    `memory_mb`, `processes` (processes and threads) and `disk_mb` (its private work dir) are
    also the limits the job's sandbox holds it to; passing one ends the job with a reason."""

    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(default=1.0, gt=0, le=1024)
    gpu: int = Field(default=0, ge=0, le=64)
    memory_mb: int = Field(default=1024, gt=0, le=16 * 1024 * 1024)
    workers: int = Field(default=1, ge=1, le=64)
    processes: int = Field(default=256, ge=16, le=65536)
    disk_mb: int = Field(default=1024, ge=16, le=1024 * 1024)

    @property
    def total_cpu(self) -> float:
        return self.cpu * self.workers

    @property
    def total_gpu(self) -> int:
        return self.gpu * self.workers

    @property
    def total_memory_mb(self) -> int:
        return self.memory_mb * self.workers


class CodeRef(BaseModel):
    """User code uploaded with `POST .../training/code`: a zip or tar.gz, run by `entrypoint`.

    `entrypoint` is `module:function` or a `path/to/script.py` inside the package; submit
    refuses one the package does not hold.
    """

    model_config = ConfigDict(extra="forbid")

    digest: str
    entrypoint: str = Field(default="train.py", min_length=1, max_length=300)

    @field_validator("digest")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _DIGEST.match(v):
            raise ValueError("must be the sha256 hex digest returned by the code upload")
        return v


class JobSpec(BaseModel):
    """What to train: a built-in trainer by name, or an uploaded code package."""

    model_config = ConfigDict(extra="forbid")

    trainer: str | None = Field(default=None, max_length=100, description="a built-in trainer name")
    code: CodeRef | None = None
    dataset_snapshot: str | None = Field(default=None, max_length=100)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    priority: int = Field(default=0, ge=-100, le=100)
    timeout_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    max_retries: int = Field(default=0, ge=0, le=20)
    experiment: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    model_name: str | None = Field(
        default=None, max_length=100,
        description="the model a built-in trainer registers its version under (default: the "
        "trainer's name); kept as the `model_name` hyperparameter")


class Job(BaseModel):
    id: str
    project: str
    name: str
    state: JobState
    trainer: str | None
    code: CodeRef | None
    code_hash: str
    dataset_snapshot: str | None
    hyperparameters: dict[str, Any]
    resources: Resources
    priority: int
    timeout_s: int
    max_retries: int
    attempt: int  # 0 for the first run, +1 per retry
    created_by: str
    created_at: datetime
    queued_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    run_id: str | None
    experiment: str
    exit_code: int | None
    message: str
    checkpoint: str | None  # sha256 of the latest checkpoint
    model_version: dict[str, Any] | None
    progress: dict[str, Any]  # the latest metrics the job logged
    gpus: list[int]
    queue_position: int | None = Field(
        default=None, description="only while queued: its place in the order the scheduler "
        "admits jobs (priority, then fair share between projects, then arrival); 0 = next")
    queue_reason: str | None = Field(
        default=None, description="only while queued: why it waits, from the scheduler's "
        "decision (resources in use, the project's quota, a job ahead of it); none when it is "
        "about to start")


class JobPage(BaseModel):
    items: list[Job]
    next_page_token: str | None = None


class TrainerInfo(BaseModel):
    name: str
    description: str
    task: str  # the dataset type it trains on
    hyperparameters: dict[str, Any]  # JSON schema
    defaults: dict[str, Any]


class Quota(BaseModel):
    """Per-project ceilings on what its running jobs hold at once; None = no limit."""

    model_config = ConfigDict(extra="forbid")

    max_cpu: float | None = Field(default=None, gt=0)
    max_gpu: int | None = Field(default=None, ge=0)
    max_jobs: int | None = Field(default=None, ge=1)


class CodeUpload(BaseModel):
    digest: str
    size: int


class MetricPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    step: int
    value: float
    time: float | None = None


class MetricBatch(BaseModel):
    points: list[MetricPoint] = Field(max_length=10_000)


class ModelMeta(BaseModel):
    """What `runtime.save_model` sends beside the artifact files."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    signature: dict[str, Any]
    preprocessing: dict[str, Any] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    framework: str = "onnx"


class JobCredentials(BaseModel):
    """What a job process gets for one use of its launch ticket; it keeps them in memory."""

    token: str = Field(description="an API token scoped to the job's project, revoked when "
                                   "the attempt ends")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="options (credentials included) to read the blob "
                                          "store's datasets with")
