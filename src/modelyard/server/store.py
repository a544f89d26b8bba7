"""Persistence of projects, users, tokens and memberships."""

from __future__ import annotations

import abc
from datetime import datetime

import sqlalchemy as sa

from modelyard.core.auth import Principal, Role
from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.server.models import Member, Project, TokenInfo, User
from modelyard.server.tables import MemberRow, ProjectRow, TokenRow, UserRow


class AuthStore(abc.ABC):
    """Projects, users, hashed tokens and roles. Returned objects are immutable copies."""

    @abc.abstractmethod
    def create_user(self, name: str, is_superuser: bool) -> User:
        """Raises AlreadyExists when the name is taken."""

    @abc.abstractmethod
    def get_user(self, name: str) -> User: ...

    @abc.abstractmethod
    def count_users(self) -> int: ...

    @abc.abstractmethod
    def add_token(self, user_id: str, name: str, token_hash: str, expires_at: datetime | None,
                  scope_project: str | None, scope_role: Role | None) -> TokenInfo: ...

    @abc.abstractmethod
    def principal_for(self, token_hash: str, now: datetime) -> Principal | None:
        """The principal of a live (not revoked, not expired) token, or None."""

    @abc.abstractmethod
    def revoke_token(self, user_id: str, token_id: str) -> None: ...

    @abc.abstractmethod
    def create_project(self, name: str, description: str, creator: User) -> Project:
        """Creates the project and makes the creator its admin. AlreadyExists if taken."""

    @abc.abstractmethod
    def get_project(self, name: str) -> Project: ...

    @abc.abstractmethod
    def list_projects(self, names: list[str] | None) -> list[Project]:
        """All projects when `names` is None, else those named."""

    @abc.abstractmethod
    def set_member(self, project: str, user: str, role: Role) -> Member: ...

    @abc.abstractmethod
    def list_members(self, project: str) -> list[Member]: ...


class SqlAuthStore(AuthStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_user(self, name: str, is_superuser: bool) -> User:
        with self.db.session() as s:
            if s.scalar(sa.select(UserRow.id).where(UserRow.name == name)):
                raise AlreadyExists(f"user {name!r} already exists", {"user": name})
            row = UserRow(id=new_id("usr"), name=name, is_superuser=is_superuser, created_at=utcnow())
            s.add(row)
            return _user(row)

    def get_user(self, name: str) -> User:
        with self.db.session() as s:
            row = s.scalar(sa.select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"user {name!r} does not exist", {"user": name})
            return _user(row)

    def count_users(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(UserRow)) or 0)

    def add_token(self, user_id: str, name: str, token_hash: str, expires_at: datetime | None,
                  scope_project: str | None, scope_role: Role | None) -> TokenInfo:
        with self.db.session() as s:
            user = s.get(UserRow, user_id)
            if user is None:
                raise NotFound(f"user {user_id!r} does not exist")
            row = TokenRow(
                id=new_id("tok"), user_id=user_id, name=name, token_hash=token_hash,
                created_at=utcnow(), expires_at=expires_at, scope_project=scope_project,
                scope_role=int(scope_role) if scope_role is not None else None,
            )
            s.add(row)
            return _token(row, user.name)

    def principal_for(self, token_hash: str, now: datetime) -> Principal | None:
        with self.db.session() as s:
            found = s.execute(
                sa.select(TokenRow, UserRow)
                .join(UserRow, UserRow.id == TokenRow.user_id)
                .where(TokenRow.token_hash == token_hash, TokenRow.revoked_at.is_(None))
            ).first()
            if found is None:
                return None
            tok, user = found
            if tok.expires_at is not None and tok.expires_at <= now:
                return None
            roles = s.execute(
                sa.select(ProjectRow.name, MemberRow.role)
                .join(MemberRow, MemberRow.project_id == ProjectRow.id)
                .where(MemberRow.user_id == user.id)
            ).all()
            return Principal(
                user_id=user.id, user_name=user.name, is_superuser=user.is_superuser,
                roles={name: Role(role) for name, role in roles}, token_id=tok.id,
                scope_project=tok.scope_project,
                scope_role=Role(tok.scope_role) if tok.scope_role is not None else None,
            )

    def revoke_token(self, user_id: str, token_id: str) -> None:
        with self.db.session() as s:
            row = s.get(TokenRow, token_id)
            if row is None or row.user_id != user_id:
                raise NotFound(f"token {token_id!r} does not exist")
            row.revoked_at = utcnow()

    def create_project(self, name: str, description: str, creator: User) -> Project:
        with self.db.session() as s:
            if s.scalar(sa.select(ProjectRow.id).where(ProjectRow.name == name)):
                raise AlreadyExists(f"project {name!r} already exists; pick another name",
                                    {"project": name})
            row = ProjectRow(id=new_id("prj"), name=name, description=description,
                             created_at=utcnow(), created_by=creator.name)
            s.add(row)
            s.flush()
            s.add(MemberRow(project_id=row.id, user_id=creator.id, role=int(Role.admin)))
            return _project(row)

    def get_project(self, name: str) -> Project:
        with self.db.session() as s:
            row = s.scalar(sa.select(ProjectRow).where(ProjectRow.name == name))
            if row is None:
                raise NotFound(f"project {name!r} does not exist", {"project": name})
            return _project(row)

    def list_projects(self, names: list[str] | None) -> list[Project]:
        with self.db.session() as s:
            q = sa.select(ProjectRow).order_by(ProjectRow.name)
            if names is not None:
                q = q.where(ProjectRow.name.in_(names))
            return [_project(r) for r in s.scalars(q)]

    def set_member(self, project: str, user: str, role: Role) -> Member:
        with self.db.session() as s:
            prow = s.scalar(sa.select(ProjectRow).where(ProjectRow.name == project))
            urow = s.scalar(sa.select(UserRow).where(UserRow.name == user))
            if prow is None:
                raise NotFound(f"project {project!r} does not exist")
            if urow is None:
                raise NotFound(f"user {user!r} does not exist; create it first", {"user": user})
            row = s.get(MemberRow, (prow.id, urow.id))
            if row is None:
                s.add(MemberRow(project_id=prow.id, user_id=urow.id, role=int(role)))
            else:
                row.role = int(role)
            return Member(project=project, user=user, role=role.name)

    def list_members(self, project: str) -> list[Member]:
        with self.db.session() as s:
            rows = s.execute(
                sa.select(UserRow.name, MemberRow.role)
                .join(MemberRow, MemberRow.user_id == UserRow.id)
                .join(ProjectRow, ProjectRow.id == MemberRow.project_id)
                .where(ProjectRow.name == project)
                .order_by(UserRow.name)
            ).all()
            return [Member(project=project, user=u, role=Role(r).name) for u, r in rows]


def _user(row: UserRow) -> User:
    return User(id=row.id, name=row.name, is_superuser=row.is_superuser, created_at=row.created_at)


def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, name=row.name, description=row.description,
                   created_at=row.created_at, created_by=row.created_by)


def _token(row: TokenRow, user: str) -> TokenInfo:
    return TokenInfo(
        id=row.id, name=row.name, user=user, created_at=row.created_at, expires_at=row.expires_at,
        scope_project=row.scope_project,
        scope_role=Role(row.scope_role).name if row.scope_role is not None else None,
    )
