"""Who creates projects (a superuser, or a user granted the right), and a superuser's hold on
every user's tokens: list them (never the secrets) and revoke any, effective at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.core.errors import PermissionDenied
from modelyard.sdk.client import Client
from tests.conftest import Team, bearer


def _create(api: TestClient, token: str, name: str) -> tuple[int, bytes]:
    r = api.post("/api/v1/projects", json={"name": name, "description": "x"},
                 headers=bearer(token))
    return r.status_code, r.content


class TestProjectCreation:
    def test_a_user_without_the_grant_is_refused_alike_for_taken_and_free_names(
            self, api: TestClient, team: Team) -> None:
        for token in (team.viewer, team.editor, team.owner, team.outsider):
            taken = _create(api, token, "alpha")
            free = _create(api, token, "zeta")
            assert taken[0] == 403
            assert taken == free  # byte for byte: the answer says nothing about the name
        assert "zeta" not in [p["name"] for p in
                              api.get("/api/v1/projects", headers=bearer(team.admin)).json()]

    def test_a_bad_name_from_a_user_without_the_grant_is_refused_the_same(
            self, api: TestClient, team: Team) -> None:
        assert _create(api, team.editor, "Not A Name") == _create(api, team.editor, "zeta")

    def test_a_granted_user_creates_projects_and_administers_them(
            self, api: TestClient, team: Team) -> None:
        granted = api.put("/api/v1/users/eve/grants", json={"can_create_projects": True},
                          headers=bearer(team.admin))
        assert granted.status_code == 200 and granted.json()["can_create_projects"] is True
        assert _create(api, team.editor, "zeta")[0] == 201
        assert api.put("/api/v1/projects/zeta/members", json={"user": "vic", "role": "viewer"},
                       headers=bearer(team.editor)).status_code == 200
        # A granted user learns a name is taken, as anyone who may create projects must.
        status, body = _create(api, team.editor, "alpha")
        assert status == 409 and b"already_exists" in body
        # Taken back: refused again.
        api.put("/api/v1/users/eve/grants", json={"can_create_projects": False},
                headers=bearer(team.admin))
        assert _create(api, team.editor, "eta")[0] == 403

    def test_a_job_token_of_a_superuser_cannot_create_projects(
            self, api: TestClient, team: Team) -> None:
        auth = api.app.state.platform.auth  # type: ignore[attr-defined]
        from modelyard.core.auth import Role

        scoped = auth.scoped_token("admin", "alpha", Role.admin, 3600, "job")
        assert _create(api, scoped, "alpha") == _create(api, scoped, "zeta")
        assert _create(api, scoped, "zeta")[0] == 403

    def test_a_user_can_be_created_with_the_grant_and_the_sdk_sets_it(
            self, api: TestClient, team: Team) -> None:
        admin = Client(token=team.admin, http=api)
        made = admin.create_user("gus", can_create_projects=True)
        gus = Client(token=made["token"], http=api)
        assert gus.create_project("gus-project")["created_by"] == "gus"
        assert admin.set_grants("gus", can_create_projects=False)["can_create_projects"] is False
        with pytest.raises(PermissionDenied, match="may not create projects"):
            gus.create_project("another")


class TestTokensOfOthers:
    def test_a_superuser_lists_a_users_tokens_without_their_secrets(
            self, api: TestClient, team: Team) -> None:
        made = api.post("/api/v1/tokens", json={"name": "ci", "ttl_s": 3600},
                        headers=bearer(team.editor)).json()
        assert api.get("/api/v1/whoami", headers=bearer(made["token"])).status_code == 200
        r = api.get("/api/v1/users/eve/tokens", headers=bearer(team.admin))
        assert r.status_code == 200, r.text
        listed = {t["name"]: t for t in r.json()}
        assert set(listed) == {"initial", "ci"}
        ci = listed["ci"]
        assert ci["id"] == made["info"]["id"] and ci["user"] == "eve"
        assert ci["expires_at"] and ci["created_at"] and ci["last_used_at"]
        # Never a secret, nor its hash.
        assert b"myd_" not in r.content and b"hash" not in r.content
        assert team.editor.encode() not in r.content and made["token"].encode() not in r.content

    def test_a_user_lists_their_own_tokens_and_nobody_elses(self, api: TestClient,
                                                            team: Team) -> None:
        own = api.get("/api/v1/tokens", headers=bearer(team.viewer))
        assert own.status_code == 200 and [t["user"] for t in own.json()] == ["vic"]
        assert api.get("/api/v1/users/vic/tokens", headers=bearer(team.viewer)).status_code == 200
        assert api.get("/api/v1/users/eve/tokens", headers=bearer(team.viewer)).status_code == 403

    def test_a_token_a_superuser_revokes_stops_working_at_once(self, api: TestClient,
                                                               team: Team) -> None:
        # Used just now: this process remembers its principal.
        assert api.get("/api/v1/projects/alpha", headers=bearer(team.editor)).status_code == 200
        eve = {t["name"]: t["id"] for t in
               api.get("/api/v1/users/eve/tokens", headers=bearer(team.admin)).json()}
        r = api.delete(f"/api/v1/users/eve/tokens/{eve['initial']}", headers=bearer(team.admin))
        assert r.status_code == 204, r.text
        assert api.get("/api/v1/projects/alpha", headers=bearer(team.editor)).status_code == 401
        assert api.get("/api/v1/users/eve/tokens", headers=bearer(team.admin)).json() == []

    def test_revoking_a_token_names_its_owner(self, api: TestClient, team: Team) -> None:
        vic = api.get("/api/v1/users/vic/tokens", headers=bearer(team.admin)).json()[0]["id"]
        wrong = api.delete(f"/api/v1/users/eve/tokens/{vic}", headers=bearer(team.admin))
        assert wrong.status_code == 404
        assert api.get("/api/v1/whoami", headers=bearer(team.viewer)).status_code == 200

    def test_the_sdk_lists_and_revokes_any_users_tokens(self, api: TestClient,
                                                        team: Team) -> None:
        admin = Client(token=team.admin, http=api)
        ids = [t["id"] for t in admin.list_tokens("vic")]
        assert len(ids) == 1
        admin.revoke_token(ids[0], user="vic")
        assert admin.list_tokens("vic") == []
        assert api.get("/api/v1/whoami", headers=bearer(team.viewer)).status_code == 401


def test_existing_users_get_no_grant_from_the_migration(api: TestClient, team: Team) -> None:
    """The column the migration adds defaults to false in the database itself."""
    db = api.app.state.platform.db  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, name, is_superuser, created_at) "
                             "VALUES ('usr_old', 'old', false, CURRENT_TIMESTAMP)"))
        granted = conn.execute(sa.text(
            "SELECT can_create_projects FROM users WHERE id = 'usr_old'")).scalar()
    assert not granted
