"""Authentication and authorization of the access routes (projects, members, tokens, users)."""

from __future__ import annotations

import stat
from datetime import timedelta

from fastapi.testclient import TestClient

from modelyard.core.auth import Role, hash_token, new_token
from modelyard.core.ids import utcnow
from modelyard.core.settings import Settings
from modelyard.server.app import create_app
from modelyard.server.platform import Platform
from tests.conftest import Team, bearer


def _platform(api: TestClient) -> Platform:
    return api.app.state.platform  # type: ignore[attr-defined,no-any-return]


def _assert_error(resp, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert err["message"]


class TestAuthentication:
    def test_request_without_token_is_401(self, api: TestClient, team: Team) -> None:
        for path in ["/api/v1/whoami", "/api/v1/projects", "/api/v1/projects/alpha"]:
            _assert_error(api.get(path), 401, "unauthenticated")
        _assert_error(api.post("/api/v1/projects", json={"name": "x"}), 401, "unauthenticated")

    def test_unknown_token_is_401(self, api: TestClient, team: Team) -> None:
        r = api.get("/api/v1/projects", headers=bearer(new_token()))
        _assert_error(r, 401, "unauthenticated")
        assert "unknown, revoked or expired" in r.json()["error"]["message"]
        _assert_error(api.get("/api/v1/projects", headers={"Authorization": "Basic eDp5"}),
                      401, "unauthenticated")

    def test_revoked_token_is_401(self, api: TestClient, team: Team) -> None:
        made = api.post("/api/v1/tokens", json={"name": "laptop"}, headers=bearer(team.viewer))
        assert made.status_code == 201, made.text
        token, token_id = made.json()["token"], made.json()["info"]["id"]
        assert api.get("/api/v1/projects/alpha", headers=bearer(token)).status_code == 200
        r = api.delete(f"/api/v1/tokens/{token_id}", headers=bearer(team.viewer))
        assert r.status_code == 204
        _assert_error(api.get("/api/v1/projects/alpha", headers=bearer(token)),
                      401, "unauthenticated")
        assert api.get("/api/v1/projects/alpha", headers=bearer(team.viewer)).status_code == 200

    def test_nobody_revokes_another_users_token(self, api: TestClient, team: Team) -> None:
        made = api.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(team.viewer)).json()
        r = api.delete(f"/api/v1/tokens/{made['info']['id']}", headers=bearer(team.outsider))
        _assert_error(r, 404, "not_found")
        assert api.get("/api/v1/whoami", headers=bearer(made["token"])).status_code == 200

    def test_expired_token_is_401(self, api: TestClient, team: Team) -> None:
        store = _platform(api).auth.store
        vic = store.get_user("vic")
        token = new_token()
        store.add_token(vic.id, "old", hash_token(token), utcnow() - timedelta(seconds=1),
                        None, None)
        _assert_error(api.get("/api/v1/projects/alpha", headers=bearer(token)),
                      401, "unauthenticated")

    def test_tokens_are_stored_hashed(self, api: TestClient, team: Team) -> None:
        import sqlalchemy as sa

        with _platform(api).db.engine.connect() as conn:
            stored = {r[0] for r in conn.execute(sa.text("SELECT token_hash FROM api_tokens"))}
        assert team.viewer not in stored
        assert hash_token(team.viewer) in stored


class TestRoles:
    def test_viewer_reads_but_cannot_write(self, api: TestClient, team: Team) -> None:
        h = bearer(team.viewer)
        assert api.get("/api/v1/projects/alpha", headers=h).status_code == 200
        assert api.get("/api/v1/projects/alpha/members", headers=h).status_code == 200
        r = api.put("/api/v1/projects/alpha/members", json={"user": "vic", "role": "admin"},
                    headers=h)
        _assert_error(r, 403, "permission_denied")
        assert r.json()["error"]["details"] == {"project": "alpha", "required": "admin",
                                                "role": "viewer"}

    def test_editor_cannot_change_members_but_admin_can(self, api: TestClient,
                                                        team: Team) -> None:
        body = {"user": "bob", "role": "viewer"}
        _assert_error(api.put("/api/v1/projects/alpha/members", json=body,
                              headers=bearer(team.editor)), 403, "permission_denied")
        r = api.put("/api/v1/projects/alpha/members", json=body, headers=bearer(team.owner))
        assert r.status_code == 200, r.text
        assert api.get("/api/v1/projects/alpha", headers=bearer(team.outsider)).status_code == 200

    def test_only_superusers_create_users(self, api: TestClient, team: Team) -> None:
        _assert_error(api.post("/api/v1/users", json={"name": "mal"}, headers=bearer(team.owner)),
                      403, "permission_denied")

    def test_whoami_lists_roles(self, api: TestClient, team: Team) -> None:
        me = api.get("/api/v1/whoami", headers=bearer(team.editor)).json()
        assert me == {"user": "eve", "is_superuser": False, "roles": {"alpha": "editor"}}


class TestProjectIsolation:
    def test_other_projects_token_sees_nothing_of_alpha(self, api: TestClient,
                                                        team: Team) -> None:
        h = bearer(team.outsider)
        for path in ["/api/v1/projects/alpha", "/api/v1/projects/alpha/members"]:
            r = api.get(path, headers=h)
            _assert_error(r, 404, "not_found")
        # an outsider cannot tell an existing project from a missing one
        missing = api.get("/api/v1/projects/no-such-project", headers=h).json()["error"]
        hidden = api.get("/api/v1/projects/alpha", headers=h).json()["error"]
        assert missing["message"].replace("no-such-project", "alpha") == hidden["message"]
        names = [p["name"] for p in api.get("/api/v1/projects", headers=h).json()]
        assert names == ["beta"]
        r = api.put("/api/v1/projects/alpha/members", json={"user": "bob", "role": "admin"},
                    headers=h)
        _assert_error(r, 404, "not_found")

    def test_member_lists_only_their_projects(self, api: TestClient, team: Team) -> None:
        names = [p["name"] for p in api.get("/api/v1/projects", headers=bearer(team.viewer)).json()]
        assert names == ["alpha"]
        every = api.get("/api/v1/projects", headers=bearer(team.admin)).json()
        assert [p["name"] for p in every] == ["alpha", "beta"]


class TestScopedTokens:
    def test_job_token_works_only_in_its_project(self, api: TestClient, team: Team) -> None:
        auth = _platform(api).auth
        token = auth.scoped_token("admin", "alpha", Role.editor, 3600, "job-1")
        h = bearer(token)
        assert api.get("/api/v1/projects/alpha", headers=h).status_code == 200
        _assert_error(api.get("/api/v1/projects/beta", headers=h), 404, "not_found")
        assert [p["name"] for p in api.get("/api/v1/projects", headers=h).json()] == ["alpha"]
        # the scope caps the superuser's role at editor
        r = api.put("/api/v1/projects/alpha/members", json={"user": "vic", "role": "admin"},
                    headers=h)
        _assert_error(r, 403, "permission_denied")

    def test_job_token_cannot_mint_tokens_or_create_projects_or_users(
        self, api: TestClient, team: Team
    ) -> None:
        token = _platform(api).auth.scoped_token("admin", "alpha", Role.editor, 3600, "job-2")
        h = bearer(token)
        _assert_error(api.post("/api/v1/tokens", json={"name": "escape"}, headers=h),
                      403, "permission_denied")
        _assert_error(api.post("/api/v1/projects", json={"name": "mine"}, headers=h),
                      403, "permission_denied")
        _assert_error(api.post("/api/v1/users", json={"name": "mine"}, headers=h),
                      403, "permission_denied")

    def test_job_token_expires(self, api: TestClient, team: Team) -> None:
        auth = _platform(api).auth
        token = auth.scoped_token("eve", "alpha", Role.editor, 60, "job-3")
        principal = auth.store.principal_for(hash_token(token), utcnow() + timedelta(seconds=61))
        assert principal is None


class TestBootstrap:
    def test_first_start_writes_admin_token_to_a_private_file(self, settings: Settings) -> None:
        path = settings.resolved_admin_token_file
        assert not path.exists()
        with TestClient(create_app(settings)) as api:
            token = path.read_text().strip()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            me = api.get("/api/v1/whoami", headers=bearer(token)).json()
            assert me["user"] == "admin" and me["is_superuser"] is True

    def test_second_start_creates_no_other_admin(self, settings: Settings) -> None:
        path = settings.resolved_admin_token_file
        with TestClient(create_app(settings)):
            first = path.read_text()
        with TestClient(create_app(settings)) as api:
            assert path.read_text() == first
            assert _platform(api).auth.store.count_users() == 1
            assert api.get("/api/v1/whoami", headers=bearer(first.strip())).status_code == 200
