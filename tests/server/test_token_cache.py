"""Token lookups are remembered for a moment, and forgotten at once when access changes."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.core.auth import Principal
from modelyard.core.errors import Unauthenticated
from modelyard.server.platform import Platform
from modelyard.server.service import AuthService
from tests.conftest import Team, bearer


def _platform(api: TestClient) -> Platform:
    return api.app.state.platform  # type: ignore[attr-defined,no-any-return]


def test_a_burst_of_requests_with_one_token_looks_it_up_once(api: TestClient,
                                                              team: Team) -> None:
    engine = _platform(api).db.engine
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_tokens" in statement:
            lookups.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert api.get("/api/v1/projects/alpha",
                           headers=bearer(team.viewer)).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(lookups) <= 1


def test_a_new_membership_works_at_once_for_a_token_just_used(api: TestClient,
                                                               team: Team) -> None:
    assert api.get("/api/v1/projects/alpha", headers=bearer(team.outsider)).status_code == 404
    r = api.put("/api/v1/projects/alpha/members", json={"user": "bob", "role": "viewer"},
                headers=bearer(team.owner))
    assert r.status_code == 200, r.text
    assert api.get("/api/v1/projects/alpha", headers=bearer(team.outsider)).status_code == 200


def test_a_project_is_usable_by_its_creator_at_once(api: TestClient, team: Team) -> None:
    assert api.get("/api/v1/projects", headers=bearer(team.editor)).status_code == 200
    assert api.put("/api/v1/users/eve/grants", json={"can_create_projects": True},
                   headers=bearer(team.admin)).status_code == 200
    assert api.post("/api/v1/projects", json={"name": "gamma"},
                    headers=bearer(team.editor)).status_code == 201
    assert api.get("/api/v1/projects/gamma", headers=bearer(team.editor)).status_code == 200


def test_a_token_in_steady_use_never_expires_from_memory(api: TestClient, team: Team) -> None:
    """Looked up again in the background near the end of its time: no request in a steady
    stream finds it expired (each would take the database path, all at once)."""
    auth = _platform(api).auth
    auth.token_cache_ttl_s = 1.0
    auth.authenticate(team.viewer)
    misses = checks = 0
    deadline = time.monotonic() + 3.5  # three and a half lifetimes
    while time.monotonic() < deadline:
        checks += 1
        misses += auth.cached_principal(team.viewer) is None
        time.sleep(0.005)
    assert checks > 100 and misses == 0


def test_a_token_revoked_by_another_process_is_forgotten_while_in_steady_use(
        api: TestClient, team: Team) -> None:
    auth = _platform(api).auth
    auth.token_cache_ttl_s = 1.0
    principal = auth.authenticate(team.viewer)
    AuthService(auth.store).revoke_token(principal, principal.token_id)  # another replica
    assert auth.cached_principal(team.viewer) is not None  # remembered for a moment
    deadline = time.monotonic() + 10
    while auth.cached_principal(team.viewer) is not None:
        assert time.monotonic() < deadline, "a revoked token is still remembered"
        time.sleep(0.005)
    with pytest.raises(Unauthenticated):
        auth.authenticate(team.viewer)


def test_a_lookup_under_way_when_access_changes_is_not_remembered(
        api: TestClient, team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup that read the database before a revocation was forgotten must not put the old
    principal back afterwards."""
    auth = _platform(api).auth
    entered, gate = threading.Event(), threading.Event()
    real = auth.store.principal_for

    def slow(token_hash: str, now: datetime) -> Principal | None:
        found = real(token_hash, now)
        entered.set()
        gate.wait(10)
        return found

    monkeypatch.setattr(auth.store, "principal_for", slow)
    looked_up: list[Principal] = []
    worker = threading.Thread(target=lambda: looked_up.append(auth.authenticate(team.viewer)))
    worker.start()
    assert entered.wait(10)
    auth.forget_principals()  # what a revocation or a membership change does here
    gate.set()
    worker.join(10)
    assert looked_up and looked_up[0].user_name == "vic"
    assert auth.cached_principal(team.viewer) is None
