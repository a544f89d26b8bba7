"""HTTP routes of the workflows component."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["workflows"])
