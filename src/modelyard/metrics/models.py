"""Domain objects of the metrics store: prediction events, feedback, query results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from modelyard.core.ids import utcnow
from modelyard.metrics._limits import LABEL_MAX, MAX_LATENCY_MS, MAX_VERSION, NAME_MAX
from modelyard.metrics._limits import OUTCOMES as OUTCOMES
from modelyard.metrics._limits import problem as _problem
from modelyard.metrics._limits import utc_naive as _utc_naive

Metric = Literal[
    "count", "rate", "latency_mean", "latency_p50", "latency_p95", "latency_p99",
    "error_rate", "accuracy", "mae", "rmse",
]
GroupBy = Literal["deployment", "model", "version"]
Resolution = Literal["auto", "raw", "1m", "1h"]  # what answers a query (see MetricsService)
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]


class PredictionEvent(BaseModel):
    """One answered (or failed) prediction of one input row. Every field is checked against
    what the event stores keep (`_limits.py`), so an accepted event is always storable."""

    project: str = Field(default="", max_length=NAME_MAX,
                         description="filled from the route when sent over REST")
    deployment: str = Field(max_length=NAME_MAX)
    model: str = Field(max_length=NAME_MAX)
    version: int = Field(ge=0, le=MAX_VERSION)  # the event store keeps a 32-bit integer
    time: datetime = Field(default_factory=utcnow, description="naive UTC")
    latency_ms: float = Field(ge=0, le=MAX_LATENCY_MS, allow_inf_nan=False,
                              description="at most a day (86,400,000 ms)")
    outcome: Literal["ok", "error", "timeout", "rejected"] = "ok"
    label: str | None = Field(default=None, max_length=LABEL_MAX)
    confidence: float | None = Field(default=None, allow_inf_nan=False)
    request_id: str = Field(max_length=NAME_MAX)
    input_summary: dict[str, Any] | None = Field(
        default=None, description="a compact summary of the input (shape, mean, length...)"
    )
    shadow: bool = Field(default=False, description="a copy sent to a shadow version")

    @field_validator("time")
    @classmethod
    def _in_utc(cls, t: datetime) -> datetime:
        return _utc_naive(t)  # a zone that puts it outside years 1-9999 is refused here

    @model_validator(mode="after")
    def _storable(self) -> PredictionEvent:
        why = _problem(self)  # what the field constraints cannot say (a NUL in a name...)
        if why is not None:
            raise ValueError(why)
        return self


class EventRow(NamedTuple):
    """A prediction event as the serving request path records it: `PredictionEvent`'s fields,
    from values of the right types, without a model's construction (about 1 µs against 9 µs
    for `PredictionEvent.model_construct`, once per answered row). Stores read either kind by
    attribute."""

    project: str
    deployment: str
    model: str
    version: int
    time: datetime
    latency_ms: float
    outcome: str
    label: str | None
    confidence: float | None
    request_id: str
    input_summary: dict[str, Any] | None
    shadow: bool


Event = PredictionEvent | EventRow  # what the metrics store takes


class EventBatch(BaseModel):
    events: list[PredictionEvent] = Field(max_length=100_000)


class Feedback(BaseModel):
    """The true label of an earlier prediction, keyed by its request id."""

    request_id: str = Field(max_length=100)
    label: str = Field(max_length=200)
    time: datetime = Field(default_factory=utcnow)


class FeedbackBatch(BaseModel):
    feedback: list[Feedback] = Field(max_length=100_000)


class Ingested(BaseModel):
    accepted: int


class Point(BaseModel):
    time: datetime  # start of the step
    value: float | None  # None where the step holds no data for this metric


class Series(BaseModel):
    group: dict[str, str]  # e.g. {"version": "3"}; {} without group_by
    points: list[Point]


class QueryResult(BaseModel):
    metric: str
    start: datetime
    end: datetime
    step_s: float
    group_by: str | None
    series: list[Series]
    resolution: str = Field(default="raw",
                            description="what answered: raw events, 1m or 1h rollups")


@dataclass(frozen=True)
class EventColumns:
    """The columns a query reads, one numpy array each, as returned by the store."""

    deployment: np.ndarray
    model: np.ndarray
    version: np.ndarray
    time_s: np.ndarray  # seconds since the epoch (UTC), float64
    latency_ms: np.ndarray
    outcome: np.ndarray
    label: np.ndarray  # object array of str | None
    true_label: np.ndarray  # object array of str | None (None: no feedback yet)

    def __len__(self) -> int:
        return len(self.time_s)


@dataclass(frozen=True)
class Cells:
    """Rollup rows of a query, merged: one row per (group, step, latency bucket), any order."""

    groups: list[str]  # distinct group values as text ("" without group_by)
    code: np.ndarray  # int64 index into `groups`
    step: np.ndarray  # int64 step index from the query's start
    bin: np.ndarray  # int64 latency bucket (see _hist.py)
    n: np.ndarray  # int64 events
    latency_sum: np.ndarray  # float64 ms
    errors: np.ndarray  # int64 error + timeout outcomes

    def __len__(self) -> int:
        return len(self.n)


class Drift(BaseModel):
    """Population stability index of the live prediction distribution against a reference."""

    psi: float
    live_counts: dict[str, int]
    reference: dict[str, float]
    drifted: bool
    threshold: float


class InputDrift(BaseModel):
    """PSI of live input summaries (each row's mean) against reference values, over the
    reference's quantile bins."""

    psi: float
    live_rows: int
    bin_edges: list[float]
    reference_share: list[float]
    live_share: list[float]
    drifted: bool
    threshold: float


class FeatureDrift(BaseModel):
    """Input drift of each named feature (tabular models): PSI of the values served against
    reference values of the same feature, over the reference's quantile bins."""

    features: dict[str, InputDrift]
    drifted: list[str]  # the features whose PSI is above the threshold
    threshold: float


class AlertRuleSpec(BaseModel):
    """Fire when `metric` over the last `window_s` seconds compares true with `threshold`.

    `metric` is a query metric (count, rate, latency_*, error_rate, accuracy), or a drift:
    `input_psi` (`reference`: per-row input means; left out, the deployed version's training
    data as its model sees it) or `prediction_psi` (needs `reference`: label -> share).

    `action` `rollback` (needs `deployment`) makes the deployment serve its previous version
    the moment the rule starts firing: an open canary goes back to its stable version;
    otherwise the version it served before its current one gets all traffic (the model's
    aliases stay where they are). The deployment's events record it.
    """

    name: str = Field(max_length=100)
    metric: Literal["count", "rate", "latency_mean", "latency_p50", "latency_p95",
                    "latency_p99", "error_rate", "accuracy", "input_psi", "prediction_psi"]
    deployment: str | None = Field(default=None, max_length=100)
    window_s: float = Field(default=300, gt=0, le=7 * 86400)
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    reference: list[float] | dict[str, float] | None = None
    action: Literal["none", "rollback"] = "none"


class AlertRule(BaseModel):
    id: str
    project: str
    spec: AlertRuleSpec
    state: Literal["ok", "firing", "no_data"]
    value: float | None
    evaluated_at: datetime | None
    created_at: datetime
    created_by: str


class AlertEvent(BaseModel):
    rule: str
    time: datetime
    from_state: str
    to_state: str
    value: float | None
    message: str
