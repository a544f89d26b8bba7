"""HTTP routes of the metrics store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from modelyard.metrics.models import (
    AlertEvent,
    AlertRule,
    AlertRuleSpec,
    Drift,
    EventBatch,
    FeatureDrift,
    FeedbackBatch,
    GroupBy,
    Ingested,
    InputDrift,
    Metric,
    QueryResult,
    Resolution,
)
from modelyard.server.deps import Editor, PlatformDep, Viewer

router = APIRouter(prefix="/api/v1/projects/{project}/metrics", tags=["metrics"])


@router.post("/events", status_code=status.HTTP_201_CREATED)
def ingest_events(body: EventBatch, access: Editor, platform: PlatformDep) -> Ingested:
    """Store prediction events of a remote serving replica; answered once they are stored."""
    return Ingested(accepted=platform.metrics.ingest(access.project, body.events))


@router.post("/feedback", status_code=status.HTTP_201_CREATED)
def add_feedback(body: FeedbackBatch, access: Editor, platform: PlatformDep) -> Ingested:
    """True labels of earlier predictions, keyed by request id (a later one replaces)."""
    return Ingested(accepted=platform.metrics.add_feedback(access.project, body.feedback))


@router.get("/query")
def query(
    access: Viewer,
    platform: PlatformDep,
    metric: Metric,
    start: datetime,
    end: datetime,
    step_s: Annotated[float, Query(gt=0)] = 60.0,
    group_by: GroupBy | None = None,
    deployment: str | None = None,
    include_shadow: bool = False,
    resolution: Resolution = "auto",
) -> QueryResult:
    return platform.metrics.query(access.project, metric, start, end, step_s, group_by,
                                  deployment, include_shadow, resolution)


class DriftRequest(BaseModel):
    deployment: str
    reference: dict[str, float] = Field(description="label -> share in the reference data")
    start: datetime
    end: datetime
    threshold: float = Field(default=0.2, gt=0)


@router.post("/drift")
def drift(body: DriftRequest, access: Viewer, platform: PlatformDep) -> Drift:
    return platform.metrics.drift(access.project, body.deployment, body.reference, body.start,
                                  body.end, body.threshold)


class InputDriftRequest(BaseModel):
    deployment: str
    reference: list[float] | None = Field(
        default=None, min_length=10, max_length=1_000_000,
        description="the per-row input mean over reference data, after the model's "
                    "preprocessing; left out: the deployed version's training data (a 400 "
                    "for a version trained on no dataset snapshot)")
    start: datetime
    end: datetime
    bins: int = Field(default=10, ge=2, le=100)
    threshold: float = Field(default=0.2, gt=0)


@router.post("/input-drift")
def input_drift(body: InputDriftRequest, access: Viewer, platform: PlatformDep) -> InputDrift:
    return platform.metrics.input_drift(access.project, body.deployment, body.reference,
                                        body.start, body.end, body.bins, body.threshold)


class FeatureDriftRequest(BaseModel):
    deployment: str
    reference: dict[str, list[float]] = Field(
        min_length=1, max_length=1000,
        description="feature name -> its values over reference data (at least `bins` each)")
    start: datetime
    end: datetime
    bins: int = Field(default=10, ge=2, le=100)
    threshold: float = Field(default=0.2, gt=0)


@router.post("/feature-drift")
def feature_drift(body: FeatureDriftRequest, access: Viewer,
                  platform: PlatformDep) -> FeatureDrift:
    """Input drift per named feature of a tabular model."""
    return platform.metrics.feature_drift(access.project, body.deployment, body.reference,
                                          body.start, body.end, body.bins, body.threshold)


@router.post("/alerts", status_code=status.HTTP_201_CREATED)
def create_alert(body: AlertRuleSpec, access: Editor, platform: PlatformDep) -> AlertRule:
    return platform.metrics.create_alert(access.project, body, access.user)


@router.get("/alerts")
def list_alerts(access: Viewer, platform: PlatformDep) -> list[AlertRule]:
    return platform.metrics.list_alerts(access.project)


@router.post("/alerts/evaluate")
def evaluate_alerts(access: Editor, platform: PlatformDep) -> list[AlertRule]:
    """Evaluate the project's rules now (the server also does so every few seconds)."""
    return platform.metrics.evaluate_alerts(access.project)


@router.get("/alerts/{name}")
def get_alert(name: str, access: Viewer, platform: PlatformDep) -> AlertRule:
    return platform.metrics.get_alert(access.project, name)


@router.delete("/alerts/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alert(name: str, access: Editor, platform: PlatformDep) -> None:
    platform.metrics.delete_alert(access.project, name)


@router.get("/alerts/{name}/history")
def alert_history(name: str, access: Viewer, platform: PlatformDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlertEvent]:
    return platform.metrics.alert_history(access.project, name, limit)
