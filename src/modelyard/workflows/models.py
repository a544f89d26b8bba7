"""Domain objects of the workflow manager (what the API returns and the service passes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
StepState = Literal["pending", "running", "succeeded", "cached", "failed", "cancelled", "skipped"]
TERMINAL_RUN = ("succeeded", "failed", "cancelled")
DONE_STEP = ("succeeded", "cached")


class StepInfo(BaseModel):
    name: str
    kind: str
    inputs: dict[str, str]  # argument -> upstream step
    params: list[str]
    map_over: str | None = None


class Pipeline(BaseModel):
    id: str
    project: str
    name: str
    source: str  # "builtin:<name>" or "package"
    package_digest: str | None = None  # the code package it runs (its content's sha256)
    entry: str | None = None  # `module:attr` inside the package
    description: str
    definition_hash: str
    steps: list[StepInfo]
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str


class PipelineRegister(BaseModel):
    """Register a built-in pipeline; your own pipelines are code packages
    (POST .../pipelines/packages)."""

    source: str = Field(description="a built-in name (e.g. `digits-lifecycle`)", max_length=300)
    name: str | None = Field(None, description="register under this name (default: its own)")


class StepRun(BaseModel):
    id: str
    step: str
    state: str
    attempts: int
    inputs_digest: str | None
    cache_key: str | None
    output: Any = None
    output_ref: str | None = None
    output_digest: str | None = None
    effects: dict[str, Any]
    cached_from: str | None = None
    error: str | None = None
    traceback: str | None = None  # a failed Python step's, from its sandboxed process
    log_tail: str | None = None  # the last lines it printed (stdout and stderr), at most 8 KB
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Run(BaseModel):
    id: str
    project: str
    pipeline: str
    version_hash: str
    package_digest: str | None = None  # the code package the run runs, whatever came later
    state: str
    params: dict[str, Any]
    trigger: str
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    cancel_requested: bool = False
    no_cache: bool = False  # every step ran afresh: no result was taken from the cache
    steps: list[StepRun] = Field(default_factory=list)


class RunCreate(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict)
    version: str | None = Field(
        None, min_length=8, max_length=64, pattern="^[0-9a-f]+$",
        description="run this version of the pipeline (its definition hash, or a unique "
                    "prefix of at least 8 characters) instead of the current one")
    no_cache: bool = Field(False, description="run every step afresh: take no result from "
                                              "the cache (results are still stored)")


class PipelineVersion(BaseModel):
    """One version of a pipeline: a definition (and code package) it was registered with."""

    hash: str
    package_digest: str | None = None
    created_at: datetime
    current: bool  # what a run gets when it names no version


class RunAccepted(BaseModel):
    id: str
    state: str


class Trigger(BaseModel):
    id: str
    project: str
    pipeline: str
    kind: Literal["cron", "event"]
    cron: str | None = None
    event: str | None = None
    match: dict[str, Any]
    params: dict[str, Any]
    cursor: dict[str, Any] = Field(default_factory=dict)
    enabled: bool
    no_cache: bool = False
    next_fire_at: datetime | None = None
    last_fired_at: datetime | None = None
    created_at: datetime
    created_by: str


class TriggerCreate(BaseModel):
    """A cron schedule (`cron`) or an event trigger (`event` + payload fields to `match`)."""

    cron: str | None = Field(None, max_length=100)
    event: Literal["dataset.commit", "alias.moved", "alert.firing"] | None = None
    match: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    no_cache: bool = Field(False, description="its runs take no step result from the cache: "
                                              "e.g. retraining on an alert when the data did "
                                              "not change")


class TriggerUpdate(BaseModel):
    cron: str | None = Field(None, max_length=100)
    match: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    enabled: bool | None = None
    no_cache: bool | None = None
