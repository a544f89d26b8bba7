"""Fixtures of the workflow tests: the service of an in-process platform, a scratch dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.workflows.service import WorkflowService


@pytest.fixture
def wf(api: TestClient) -> WorkflowService:
    """The workflow service of the app under test (background loop off: `wait` drives it)."""
    return api.app.state.platform.workflows  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    d = tmp_path / "work"
    d.mkdir()
    return str(d)
