"""Domain objects of projects, users and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Project(BaseModel):
    id: str
    name: str
    description: str = ""
    created_at: datetime
    created_by: str


class ProjectCreate(BaseModel):
    name: str = Field(description="lowercase letters, digits, '.', '_' or '-'")
    description: str = Field(default="", max_length=2000)


class User(BaseModel):
    id: str
    name: str
    is_superuser: bool = False
    can_create_projects: bool = False
    created_at: datetime


class UserCreate(BaseModel):
    name: str
    is_superuser: bool = False
    can_create_projects: bool = False


class UserGrants(BaseModel):
    """What a superuser may grant a user beyond project roles."""

    can_create_projects: bool


class UserWithToken(BaseModel):
    user: User
    token: str = Field(description="shown once; only its hash is stored")


class Member(BaseModel):
    project: str
    user: str
    role: str


class MemberSet(BaseModel):
    user: str
    role: str = Field(description="viewer, editor or admin")


class TokenInfo(BaseModel):
    id: str
    name: str
    user: str
    created_at: datetime
    expires_at: datetime | None = None
    scope_project: str | None = None
    scope_role: str | None = None
    last_used_at: datetime | None = None


class TokenCreate(BaseModel):
    name: str = Field(default="cli", max_length=200)
    ttl_s: int | None = Field(default=None, ge=60, le=10 * 365 * 86400)


class NewToken(BaseModel):
    info: TokenInfo
    token: str


class WhoAmI(BaseModel):
    user: str
    is_superuser: bool
    roles: dict[str, str]
