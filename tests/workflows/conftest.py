"""Fixtures of the workflow tests: the service of an in-process platform, a scratch dir.

The engine's tests run user steps with the sandbox off (still a process of their own, never
the server's): their steps count runs in files of the test's scratch dir, which bubblewrap
would rightly hide. The attacker tests run under bubblewrap too (test_hostile.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.workflows.service import WorkflowService


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", background=False,
                    security={"sandbox": "off"})  # type: ignore[arg-type]


@pytest.fixture
def wf(api: TestClient) -> WorkflowService:
    """The workflow service of the app under test (background loop off: `wait` drives it)."""
    return api.app.state.platform.workflows  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    d = tmp_path / "work"
    d.mkdir()
    return str(d)
