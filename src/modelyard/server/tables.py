"""ORM rows of the server's own tables; nothing outside `store.py` uses them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.core.db import Base


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(100))


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    is_superuser: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Granted by a superuser: may create projects (and becomes their admin).
    can_create_projects: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                      server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class TokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    scope_project: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    scope_role: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class MemberRow(Base):
    __tablename__ = "project_members"
    project_id: Mapped[str] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[int] = mapped_column(sa.Integer)


class TicketRow(Base):
    """A one-time launch ticket: exchanged (up to `uses_left` times, before `expires_at`) for a
    fresh token scoped to `project` and `role`, acting for `user_id`. Only its hash is stored."""

    __tablename__ = "launch_tickets"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    ticket_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(200), index=True)  # e.g. training-job:<id>
    attempt: Mapped[int] = mapped_column(sa.Integer)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[int] = mapped_column(sa.Integer)
    token_ttl_s: Mapped[int] = mapped_column(sa.Integer)
    uses_left: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    # The tokens handed out for it, revoked with it when its subject ends.
    token_ids: Mapped[list[str]] = mapped_column(sa.JSON)
