"""Token lookups are remembered for a moment, and forgotten at once when access changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.server.platform import Platform
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
    assert api.post("/api/v1/projects", json={"name": "gamma"},
                    headers=bearer(team.editor)).status_code == 201
    assert api.get("/api/v1/projects/gamma", headers=bearer(team.editor)).status_code == 200
