"""Domain objects of the HPO component: study specs, studies, trials."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.training.models import CodeRef, Resources

Scalar = str | int | float | bool | None


class Condition(BaseModel):
    """The parameter is active only when categorical `param` took one of `values`."""

    model_config = ConfigDict(extra="forbid")

    param: str = Field(min_length=1, max_length=100)
    values: list[Scalar] = Field(min_length=1, max_length=1000)


class ParamSpec(BaseModel):
    """One dimension of the search space.

    `int` and `float` take `low`..`high` (inclusive), optionally `log` (low > 0) or `step`;
    `categorical` takes `choices`.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Scalar] | None = Field(default=None, max_length=1000)
    condition: Condition | None = None


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=200, description="a metric the trainer logs")
    direction: Literal["maximize", "minimize"] = "maximize"


class SamplerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["random", "grid", "tpe", "cmaes"] = "tpe"
    seed: int | None = Field(default=None, ge=0)
    n_startup_trials: int | None = Field(default=None, ge=0, le=10_000,
                                         description="random trials before TPE/CMA-ES model")


class PrunerSpec(BaseModel):
    """Early stopping on the objective's intermediate values (steps = what the trainer logs,
    epochs for the built-in trainers)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["asha", "successive_halving", "hyperband", "median", "none"] = "asha"
    min_resource: int = Field(default=1, ge=1, description="steps before the first rung")
    max_resource: int | None = Field(default=None, ge=1, description="hyperband: the most steps")
    reduction_factor: int = Field(default=3, ge=2, le=100)
    n_startup_trials: int = Field(default=2, ge=0, description="median: trials never pruned")
    n_warmup_steps: int = Field(default=0, ge=0, description="median: steps never pruned")


class StudySpec(BaseModel):
    """What to tune: a trainer (or uploaded code) on a snapshot, a search space, a budget."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    trainer: str | None = Field(default=None, max_length=100)
    code: CodeRef | None = None
    dataset_snapshot: str | None = Field(default=None, max_length=100)
    search_space: dict[str, ParamSpec] = Field(min_length=1, max_length=100)
    objective: Objective
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    n_trials: int = Field(ge=1, le=10_000, description="the trial budget")
    max_parallel: int = Field(default=2, ge=1, le=256, description="trial jobs active at once")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="fixed values")
    resources: Resources = Field(default_factory=Resources)
    priority: int = Field(default=0, ge=-100, le=100)
    timeout_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600, description="per trial")
    experiment: str | None = Field(default=None, max_length=100,
                                   description="registry experiment of the trials' runs")
    best_alias: str | None = Field(default=None, max_length=100,
                                   description="alias set on the best trial's model version")


class StudyState(str, enum.Enum):
    running = "running"
    completed = "completed"
    stopped = "stopped"

    @property
    def terminal(self) -> bool:
        return self is not StudyState.running


class TrialState(str, enum.Enum):
    pending = "pending"  # asked, its job not yet submitted
    running = "running"  # its job is queued or running
    completed = "completed"
    pruned = "pruned"
    failed = "failed"
    cancelled = "cancelled"  # the study was stopped

    @property
    def terminal(self) -> bool:
        return self not in (TrialState.pending, TrialState.running)


class Trial(BaseModel):
    id: str
    study_id: str
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    last_step: int | None  # the last intermediate step reported to the pruner
    job_id: str | None
    run_id: str | None
    optuna_trial_id: int | None
    created_at: datetime
    finished_at: datetime | None
    message: str
    metrics: dict[str, Any] = Field(default_factory=dict)  # the job's latest metrics


class Study(BaseModel):
    id: str
    project: str
    name: str
    state: StudyState
    spec: StudySpec
    experiment: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    message: str
    counts: dict[str, int] = Field(default_factory=dict)  # trials per state
    best: Trial | None = None
    best_model_version: dict[str, Any] | None = None
