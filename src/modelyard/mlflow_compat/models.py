"""Domain objects of the MLflow adapter (what its store returns)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"  # MLflow's name for the registry's `default` experiment


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Experiment(_Frozen):
    id: str
    name: str  # the registry experiment's name (MLflow shows `Default` for `default`)
    tags: dict[str, str]
    created_at: datetime | None


class ArtifactFile(_Frozen):
    path: str  # under the artifact root: `<experiment id>/<run id>/artifacts/...`
    digest: str
    size: int


class LoggedModel(_Frozen):
    id: str
    project: str
    experiment_id: str
    name: str
    source_run_id: str | None
    model_type: str | None
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @property
    def artifact_root(self) -> str:
        return f"{self.experiment_id}/models/{self.id}/artifacts"


# Request bodies of MLflow's API (proto3 JSON; fields the client may add are ignored)
class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(_Body):
    key: str = Field(max_length=250)
    value: str = Field("", max_length=8000)


class MetricIn(_Body):
    key: str = Field(max_length=250)
    value: float
    timestamp: int | None = None  # milliseconds since the epoch
    step: int = 0
    model_id: str | None = Field(None, max_length=40)  # set when MLflow links it to a model


class ExperimentCreate(_Body):
    name: str = Field(max_length=200)
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list, max_length=100)


class ExperimentSearch(_Body):
    max_results: int = Field(1000, ge=1, le=50_000)
    page_token: str | None = Field(None, max_length=100)
    filter: str | None = Field(None, max_length=1000)


class ExperimentTag(_Body):
    experiment_id: str = Field(max_length=40)
    key: str = Field(max_length=250)
    value: str = Field(max_length=5000)


class RunCreateIn(_Body):
    experiment_id: str = Field("0", max_length=40)
    run_name: str | None = Field(None, max_length=250)
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


class RunUpdate(_Body):
    run_id: str = Field("", max_length=100)
    run_uuid: str = Field("", max_length=100)
    status: str | None = Field(None, max_length=20)
    run_name: str | None = Field(None, max_length=250)


class RunRef(_Body):
    run_id: str = Field("", max_length=100)
    run_uuid: str = Field("", max_length=100)


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef, KeyValue):
    pass


class DeleteTag(RunRef):
    key: str = Field(max_length=250)


class LogBatch(_Body):
    run_id: str = Field(max_length=100)
    metrics: list[MetricIn] = Field(default_factory=list, max_length=1000)
    params: list[KeyValue] = Field(default_factory=list, max_length=100)
    tags: list[KeyValue] = Field(default_factory=list, max_length=100)


class RunSearchIn(_Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter: str | None = Field(None, max_length=5000)
    max_results: int = Field(1000, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = Field(None, max_length=500)


class RegisteredModelIn(_Body):
    name: str = Field(max_length=100)


class ModelSearchIn(_Body):
    filter: str | None = Field(None, max_length=1000)
    max_results: int = Field(100, ge=1, le=10_000)


class VersionCreateIn(_Body):
    name: str = Field(max_length=100)
    source: str = Field("", max_length=2000)
    run_id: str | None = Field(None, max_length=100)
    model_id: str | None = Field(None, max_length=40)


class AliasIn(_Body):
    name: str = Field(max_length=100)
    alias: str = Field(max_length=100)
    version: int = Field(ge=1, le=2**31 - 1)


class LoggedModelCreate(_Body):
    experiment_id: str = Field("0", max_length=40)
    name: str = Field("model", max_length=500)
    model_type: str | None = Field(None, max_length=200)
    source_run_id: str | None = Field(None, max_length=100)
    params: list[KeyValue] = Field(default_factory=list, max_length=1000)
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


class LoggedModelFinalize(_Body):
    status: str = Field("LOGGED_MODEL_READY", max_length=40)


class LoggedModelTags(_Body):
    tags: list[KeyValue] = Field(default_factory=list, max_length=1000)


class LoggedModelParams(_Body):
    params: list[KeyValue] = Field(default_factory=list, max_length=1000)


class LoggedModelSearch(_Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter: str | None = Field(None, max_length=1000)
    max_results: int = Field(100, ge=1, le=10_000)


class DatasetIn(_Body):
    name: str = Field("dataset", max_length=500)
    digest: str = Field("", max_length=100)
    source_type: str = Field("", max_length=100)
    source: str = Field("", max_length=4000)


class DatasetInput(_Body):
    dataset: DatasetIn


class LogInputs(_Body):
    run_id: str = Field(max_length=100)
    datasets: list[DatasetInput] = Field(default_factory=list, max_length=1000)
