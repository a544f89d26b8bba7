"""AuthStore conformance suite: the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from modelyard.core.auth import Role, hash_token, new_token
from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import utcnow
from modelyard.server.store import AuthStore, SqlAuthStore
from tests._servers.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    # Only the server's branch: this suite tests the AuthStore, not other components'
    # migrations (tests/core/test_migrations.py applies every branch together).
    with fresh_database(request, tmp_path, "server@head") as database:
        yield database


@pytest.fixture
def store(db: Database) -> AuthStore:
    return SqlAuthStore(db)


def _token(store: AuthStore, user_id: str, **kw: object) -> str:
    token = new_token()
    args: dict[str, object] = {"expires_at": None, "scope_project": None, "scope_role": None}
    args.update(kw)
    store.add_token(user_id, "t", hash_token(token), **args)  # type: ignore[arg-type]
    return token


class TestUsers:
    def test_create_and_get(self, store: AuthStore) -> None:
        made = store.create_user("ana", is_superuser=True)
        got = store.get_user("ana")
        assert got == made
        assert got.is_superuser and got.name == "ana" and got.id.startswith("usr_")

    def test_duplicate_name_is_already_exists(self, store: AuthStore) -> None:
        store.create_user("ana", False)
        with pytest.raises(AlreadyExists, match="ana"):
            store.create_user("ana", True)
        assert store.count_users() == 1

    def test_missing_user_is_not_found(self, store: AuthStore) -> None:
        with pytest.raises(NotFound, match="ghost"):
            store.get_user("ghost")

    def test_count(self, store: AuthStore) -> None:
        assert store.count_users() == 0
        store.create_user("a", False)
        store.create_user("b", False)
        assert store.count_users() == 2


class TestTokens:
    def test_live_token_gives_the_users_principal_with_roles(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        store.create_project("alpha", "", ana)
        bo = store.create_user("bo", False)
        store.set_member("alpha", "bo", Role.viewer)
        token = _token(store, bo.id)
        p = store.principal_for(hash_token(token), utcnow())
        assert p is not None
        assert (p.user_id, p.user_name, p.is_superuser) == (bo.id, "bo", False)
        assert p.roles == {"alpha": Role.viewer}
        assert p.scope_project is None and p.scope_role is None

    def test_token_info_never_holds_the_secret(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        token = new_token()
        info = store.add_token(ana.id, "laptop", hash_token(token), None, None, None)
        assert info.user == "ana" and info.name == "laptop"
        assert token not in info.model_dump_json() and hash_token(token) not in info.model_dump_json()

    def test_unknown_token_has_no_principal(self, store: AuthStore) -> None:
        store.create_user("ana", False)
        assert store.principal_for(hash_token(new_token()), utcnow()) is None

    def test_expired_token_has_no_principal(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        expires = utcnow() + timedelta(minutes=5)
        token = _token(store, ana.id, expires_at=expires)
        assert store.principal_for(hash_token(token), expires - timedelta(seconds=1)) is not None
        assert store.principal_for(hash_token(token), expires) is None
        assert store.principal_for(hash_token(token), expires + timedelta(days=1)) is None

    def test_revoked_token_has_no_principal(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        token = new_token()
        info = store.add_token(ana.id, "t", hash_token(token), None, None, None)
        store.revoke_token(ana.id, info.id)
        assert store.principal_for(hash_token(token), utcnow()) is None

    def test_only_the_owner_can_revoke(self, store: AuthStore) -> None:
        ana, bo = store.create_user("ana", False), store.create_user("bo", False)
        token = new_token()
        info = store.add_token(ana.id, "t", hash_token(token), None, None, None)
        with pytest.raises(NotFound):
            store.revoke_token(bo.id, info.id)
        with pytest.raises(NotFound):
            store.revoke_token(ana.id, "tok_missing")
        assert store.principal_for(hash_token(token), utcnow()) is not None

    def test_scope_round_trips(self, store: AuthStore) -> None:
        ana = store.create_user("ana", True)
        token = new_token()
        info = store.add_token(ana.id, "job", hash_token(token), None, "alpha", Role.editor)
        assert (info.scope_project, info.scope_role) == ("alpha", "editor")
        p = store.principal_for(hash_token(token), utcnow())
        assert p is not None
        assert (p.scope_project, p.scope_role) == ("alpha", Role.editor)
        assert p.role_in("alpha") == Role.editor and p.role_in("beta") is None

    def test_token_of_missing_user_is_not_found(self, store: AuthStore) -> None:
        with pytest.raises(NotFound):
            store.add_token("usr_missing", "t", hash_token(new_token()), None, None, None)

    def test_same_hash_twice_is_already_exists(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        h = hash_token(new_token())
        store.add_token(ana.id, "a", h, None, None, None)
        with pytest.raises(AlreadyExists):
            store.add_token(ana.id, "b", h, None, None, None)


class TestProjects:
    def test_creator_becomes_admin(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        project = store.create_project("alpha", "first", ana)
        assert (project.name, project.description, project.created_by) == ("alpha", "first", "ana")
        assert store.get_project("alpha") == project
        assert [(m.user, m.role) for m in store.list_members("alpha")] == [("ana", "admin")]

    def test_duplicate_name_is_already_exists(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        store.create_project("alpha", "", ana)
        with pytest.raises(AlreadyExists, match="alpha"):
            store.create_project("alpha", "again", ana)
        assert store.get_project("alpha").description == ""

    def test_missing_project_is_not_found(self, store: AuthStore) -> None:
        with pytest.raises(NotFound, match="nope"):
            store.get_project("nope")

    def test_list_all_or_named_sorted_by_name(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        for name in ["gamma", "alpha", "beta"]:
            store.create_project(name, "", ana)
        assert [p.name for p in store.list_projects(None)] == ["alpha", "beta", "gamma"]
        assert [p.name for p in store.list_projects(["gamma", "alpha", "zzz"])] == ["alpha", "gamma"]
        assert store.list_projects([]) == []

    def test_returned_objects_are_copies(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        project = store.create_project("alpha", "kept", ana)
        project.description = "changed by a caller"
        assert store.get_project("alpha").description == "kept"


class TestMembers:
    def test_set_member_adds_then_changes_the_role(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        store.create_user("bo", False)
        store.create_project("alpha", "", ana)
        assert store.set_member("alpha", "bo", Role.viewer).role == "viewer"
        assert store.set_member("alpha", "bo", Role.editor).role == "editor"
        assert [(m.user, m.role) for m in store.list_members("alpha")] == [
            ("ana", "admin"), ("bo", "editor")]

    def test_membership_shows_in_the_principal(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        bo = store.create_user("bo", False)
        store.create_project("alpha", "", ana)
        store.create_project("beta", "", ana)
        store.set_member("beta", "bo", Role.admin)
        token = _token(store, bo.id)
        p = store.principal_for(hash_token(token), utcnow())
        assert p is not None and p.roles == {"beta": Role.admin}

    def test_missing_user_or_project_is_not_found(self, store: AuthStore) -> None:
        ana = store.create_user("ana", False)
        store.create_project("alpha", "", ana)
        with pytest.raises(NotFound, match="ghost"):
            store.set_member("alpha", "ghost", Role.viewer)
        with pytest.raises(NotFound, match="nope"):
            store.set_member("nope", "ana", Role.viewer)
        assert store.list_members("nope") == []


class TestLaunchTickets:
    def _ticket(self, store: AuthStore, uses: int, ttl_s: int = 600) -> tuple[str, str]:
        from modelyard.server.tickets import new_ticket

        user = store.create_user("ana", False)
        ticket = new_ticket()
        store.add_ticket(hash_token(ticket), "training-job:j1", 0, user.id, "alpha", Role.editor,
                         3600, uses, utcnow() + timedelta(seconds=ttl_s))
        return ticket, user.id

    def _redeem(self, store: AuthStore, ticket: str, attempt: int = 0) -> str | None:
        token = new_token()
        got = store.redeem_ticket(hash_token(ticket), "training-job:j1", attempt, utcnow(),
                                  hash_token(token), "training-job:j1")
        return token if got is not None else None

    def test_workers_racing_for_the_uses_get_exactly_that_many_tokens(
            self, store: AuthStore) -> None:
        from concurrent.futures import ThreadPoolExecutor

        ticket, _ = self._ticket(store, uses=2)
        with ThreadPoolExecutor(6) as pool:
            got = list(pool.map(lambda _: self._redeem(store, ticket), range(6)))
        tokens = [t for t in got if t is not None]
        assert len(tokens) == 2
        for token in tokens:  # scoped to the ticket's project and role
            principal = store.principal_for(hash_token(token), utcnow())
            assert principal is not None
            assert (principal.scope_project, principal.scope_role) == ("alpha", Role.editor)

    def test_another_attempts_or_an_expired_ticket_gives_nothing(self, store: AuthStore) -> None:
        ticket, _ = self._ticket(store, uses=1)
        assert self._redeem(store, ticket, attempt=1) is None
        expired, _ = TestLaunchTickets._ticket_for(store, "bo", ttl_s=-1)
        assert self._redeem(store, expired) is None
        assert self._redeem(store, ticket) is not None

    @staticmethod
    def _ticket_for(store: AuthStore, user: str, ttl_s: int) -> tuple[str, str]:
        from modelyard.server.tickets import new_ticket

        made = store.create_user(user, False)
        ticket = new_ticket()
        store.add_ticket(hash_token(ticket), "training-job:j1", 0, made.id, "alpha",
                         Role.editor, 3600, 1, utcnow() + timedelta(seconds=ttl_s))
        return ticket, made.id

    def test_voiding_revokes_the_tokens_handed_out_and_ends_the_ticket(
            self, store: AuthStore) -> None:
        ticket, _ = self._ticket(store, uses=3)
        token = self._redeem(store, ticket)
        assert token is not None
        assert len(store.void_tickets("training-job:j1")) == 1
        assert store.principal_for(hash_token(token), utcnow()) is None
        assert self._redeem(store, ticket) is None
        assert store.void_tickets("training-job:j1") == []
