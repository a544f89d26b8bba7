"""Persistence of projects, users, tokens and memberships."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from modelyard.core.auth import Principal, Role
from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.server.models import Member, Project, TokenInfo, User
from modelyard.server.tables import MemberRow, ProjectRow, TicketRow, TokenRow, UserRow

# A token's last use is written at most this often: a busy token costs no write per lookup.
LAST_USED_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Redeemed:
    """What one redemption of a launch ticket produced."""

    token_id: str
    user: str
    project: str
    role: Role
    expires_at: datetime


class AuthStore(abc.ABC):
    """Projects, users, hashed tokens and roles. Returned objects are immutable copies."""

    @abc.abstractmethod
    def create_user(self, name: str, is_superuser: bool, can_create_projects: bool = False) -> User:
        """Raises AlreadyExists when the name is taken."""

    @abc.abstractmethod
    def set_grants(self, name: str, can_create_projects: bool) -> User:
        """Raises NotFound for an unknown user."""

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
    def revoke_token(self, user_id: str, token_id: str) -> None:
        """Raises NotFound unless the token exists and belongs to the user."""

    @abc.abstractmethod
    def list_tokens(self, user_id: str) -> list[TokenInfo]:
        """The user's tokens not revoked (expired ones included), oldest first."""

    @abc.abstractmethod
    def add_ticket(self, ticket_hash: str, subject: str, attempt: int, user_id: str, project: str,
                   role: Role, token_ttl_s: int, uses: int, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    def redeem_ticket(self, ticket_hash: str, subject: str, attempt: int, now: datetime,
                      token_hash: str, token_name: str) -> Redeemed | None:
        """Atomically takes one use of a live ticket of (subject, attempt) and stores a new
        scoped token with `token_hash`; None (nothing stored) if there is no such use left."""

    @abc.abstractmethod
    def void_tickets(self, subject: str) -> list[str]:
        """Deletes every ticket of `subject` and revokes the tokens handed out for them;
        returns those tokens' ids."""

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

    def create_user(self, name: str, is_superuser: bool, can_create_projects: bool = False) -> User:
        with self.db.session() as s:
            if s.scalar(sa.select(UserRow.id).where(UserRow.name == name)):
                raise AlreadyExists(f"user {name!r} already exists", {"user": name})
            row = UserRow(id=new_id("usr"), name=name, is_superuser=is_superuser,
                          can_create_projects=can_create_projects, created_at=utcnow())
            s.add(row)
            return _user(row)

    def set_grants(self, name: str, can_create_projects: bool) -> User:
        with self.db.session() as s:
            row = s.scalar(sa.select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"user {name!r} does not exist", {"user": name})
            row.can_create_projects = can_create_projects
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
            if tok.last_used_at is None or now - tok.last_used_at > LAST_USED_EVERY:
                tok.last_used_at = now
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
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    def list_tokens(self, user_id: str) -> list[TokenInfo]:
        with self.db.session() as s:
            user = s.get(UserRow, user_id)
            if user is None:
                raise NotFound(f"user {user_id!r} does not exist")
            rows = s.scalars(sa.select(TokenRow)
                             .where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None))
                             .order_by(TokenRow.created_at, TokenRow.id))
            return [_token(r, user.name) for r in rows]

    def add_ticket(self, ticket_hash: str, subject: str, attempt: int, user_id: str, project: str,
                   role: Role, token_ttl_s: int, uses: int, expires_at: datetime) -> None:
        with self.db.session() as s:
            s.add(TicketRow(id=new_id("tkt"), ticket_hash=ticket_hash, subject=subject,
                            attempt=attempt, user_id=user_id, project=project, role=int(role),
                            token_ttl_s=token_ttl_s, uses_left=uses, created_at=utcnow(),
                            expires_at=expires_at, token_ids=[]))

    def redeem_ticket(self, ticket_hash: str, subject: str, attempt: int, now: datetime,
                      token_hash: str, token_name: str) -> Redeemed | None:
        with self.db.session() as s:
            # One conditional UPDATE takes the use: two ranks racing for the last use cannot
            # both win (the row lock on PostgreSQL, the single writer on SQLite).
            took = s.execute(
                sa.update(TicketRow)
                .where(TicketRow.ticket_hash == ticket_hash, TicketRow.subject == subject,
                       TicketRow.attempt == attempt, TicketRow.uses_left > 0,
                       TicketRow.expires_at > now)
                .values(uses_left=TicketRow.uses_left - 1)
                .execution_options(synchronize_session=False))
            if took.rowcount != 1:  # type: ignore[attr-defined]
                return None
            ticket = s.scalar(sa.select(TicketRow).where(TicketRow.ticket_hash == ticket_hash))
            user = s.get(UserRow, ticket.user_id) if ticket is not None else None
            if ticket is None or user is None:
                return None
            expires = now + timedelta(seconds=ticket.token_ttl_s)
            token = TokenRow(id=new_id("tok"), user_id=user.id, name=token_name,
                             token_hash=token_hash, created_at=now, expires_at=expires,
                             scope_project=ticket.project, scope_role=ticket.role)
            s.add(token)
            ticket.token_ids = [*ticket.token_ids, token.id]
            return Redeemed(token_id=token.id, user=user.name, project=ticket.project,
                            role=Role(ticket.role), expires_at=expires)

    def void_tickets(self, subject: str) -> list[str]:
        with self.db.session() as s:
            tickets = list(s.scalars(sa.select(TicketRow).where(TicketRow.subject == subject)
                                     .with_for_update()))
            token_ids = [t for ticket in tickets for t in ticket.token_ids]
            if token_ids:
                s.execute(sa.update(TokenRow)
                          .where(TokenRow.id.in_(token_ids), TokenRow.revoked_at.is_(None))
                          .values(revoked_at=utcnow())
                          .execution_options(synchronize_session=False))
            for ticket in tickets:
                s.delete(ticket)
            return token_ids

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
    return User(id=row.id, name=row.name, is_superuser=row.is_superuser,
                can_create_projects=bool(row.can_create_projects), created_at=row.created_at)


def _project(row: ProjectRow) -> Project:
    return Project(id=row.id, name=row.name, description=row.description,
                   created_at=row.created_at, created_by=row.created_by)


def _token(row: TokenRow, user: str) -> TokenInfo:
    return TokenInfo(
        id=row.id, name=row.name, user=user, created_at=row.created_at, expires_at=row.expires_at,
        scope_project=row.scope_project,
        scope_role=Role(row.scope_role).name if row.scope_role is not None else None,
        last_used_at=row.last_used_at,
    )
