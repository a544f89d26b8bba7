"""Liveness, readiness and Prometheus exposition."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelyard.core.errors import Unavailable
from modelyard.server.deps import PlatformDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(platform: PlatformDep) -> dict[str, Any]:
    """Ready when the database answers and start-up is done. `details.sandbox` tells what
    user code runs under here (`bubblewrap` or `off`), the setting, and why."""
    try:
        with platform.db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure means not ready
        raise Unavailable(f"metadata database not reachable: {e}") from e
    if not platform.ready:
        raise Unavailable("starting up")
    sandbox = platform.training.sandbox
    return {"status": "ready", "details": {"sandbox": {
        "mode": sandbox.mode, "setting": sandbox.setting, "detail": sandbox.detail}}}


@router.get("/metrics", include_in_schema=False)
def metrics(platform: PlatformDep) -> Response:
    return Response(generate_latest(platform.prometheus), media_type=CONTENT_TYPE_LATEST)
