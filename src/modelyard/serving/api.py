"""HTTP routes of the serving component."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["serving"])
v2_router = None
