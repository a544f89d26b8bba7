"""Domain objects of serving: deployments, predictions and Open Inference Protocol bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelyard.metrics import MAX_VERSION


class Batching(BaseModel):
    """Per-deployment overrides of the server's batching settings (None: the server's value)."""

    max_batch_size: int | None = Field(default=None, ge=1, le=4096)
    max_batch_delay_ms: float | None = Field(default=None, ge=0, le=1000)
    max_queue: int | None = Field(default=None, ge=1, le=1_000_000)
    request_timeout_s: float | None = Field(default=None, gt=0, le=600)


class RollbackRule(BaseModel):
    """Send all traffic back to the stable version when a canary does worse than this."""

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p95_ms: float | None = Field(default=None, gt=0)
    window_s: float = Field(default=300, gt=0, le=86400)
    min_requests: int = Field(default=20, ge=1, le=1_000_000_000)


class DeploymentCreate(BaseModel):
    name: str = Field(description="lowercase letters, digits, '.', '_' or '-'")
    model_ref: str = Field(description="`model@alias` or `model@version`, e.g. digits@production")
    traffic: dict[str, int] | None = Field(
        default=None,
        description="percent of requests per version of the model, summing to 100, e.g. "
                    '{"3": 90, "4": 10}; none: every request goes to model_ref',
    )
    shadow_version: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                       description="a version that gets a copy of each request")
    batching: Batching = Field(default_factory=Batching)
    rollback: RollbackRule | None = None
    pinned: bool = Field(default=False, description="keep its versions loaded (never evicted)")
    warm: bool = Field(default=False, description="load its versions now, not on first request")


class DeploymentUpdate(BaseModel):
    """Fields to change; fields left out keep their value (send null to clear one)."""

    model_ref: str | None = None
    traffic: dict[str, int] | None = None
    shadow_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    batching: Batching | None = None
    rollback: RollbackRule | None = None
    pinned: bool | None = None
    warm: bool = False


class TrafficSet(BaseModel):
    traffic: dict[str, int] | None = Field(description="version -> percent; null: all to model_ref")


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project: str
    name: str
    model: str
    model_ref: str
    traffic: dict[str, int] | None
    shadow_version: int | None
    batching: Batching
    rollback: RollbackRule | None
    pinned: bool
    created_at: datetime
    updated_at: datetime
    created_by: str


class DeploymentEvent(BaseModel):
    time: datetime
    deployment: str
    kind: str  # created | updated | traffic | rollback | deleted
    message: str
    details: dict[str, Any]


MAX_PREDICT_INPUTS = 4096  # rows in one /predict request


class PredictRequest(BaseModel):
    inputs: list[Any] = Field(min_length=1, max_length=MAX_PREDICT_INPUTS,
                              description="raw inputs: pixel arrays, base64 PNG, text...")


class Prediction(BaseModel):
    label: str
    confidence: float


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model_version: int
    request_id: str  # look it up: GET .../deployments/{deployment}/predictions/{request_id}
    deployment: str
    model: str


class PredictionRecord(BaseModel):
    """What was answered to one request, from its prediction events."""

    request_id: str
    deployment: str
    model: str
    version: int
    time: datetime
    latency_ms: float
    outcome: str
    outputs: list[dict[str, Any]]  # label and confidence of each input row
    shadow: list[dict[str, Any]] = Field(default_factory=list)  # the shadow version's answers


# Open Inference Protocol (KServe v2) bodies.
class TensorIn(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = Field(
        default=None, description="row-major values; absent when sent as binary data")
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[TensorIn] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class TensorOut(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[TensorOut]


class TensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]
