"""Routes of identity and access: whoami, users, tokens, projects, members."""

from __future__ import annotations

from fastapi import APIRouter, status

from modelyard.server.deps import Admin, Caller, PlatformDep, Viewer
from modelyard.server.models import (
    Member,
    MemberSet,
    NewToken,
    Project,
    ProjectCreate,
    TokenCreate,
    TokenInfo,
    User,
    UserCreate,
    UserGrants,
    UserWithToken,
    WhoAmI,
)

router = APIRouter(prefix="/api/v1", tags=["access"])


@router.get("/whoami")
def whoami(caller: Caller) -> WhoAmI:
    roles = {p: r.name for p, r in caller.roles.items() if caller.role_in(p) is not None}
    return WhoAmI(user=caller.user_name, is_superuser=caller.is_superuser, roles=roles)


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, caller: Caller, platform: PlatformDep) -> UserWithToken:
    return platform.auth.create_user(caller, body.name, body.is_superuser,
                                     body.can_create_projects)


@router.put("/users/{user}/grants")
def set_grants(user: str, body: UserGrants, caller: Caller, platform: PlatformDep) -> User:
    """Superusers only: what the user may do beyond project roles (create projects)."""
    return platform.auth.set_grants(caller, user, body)


@router.get("/users/{user}/tokens")
def list_user_tokens(user: str, caller: Caller, platform: PlatformDep) -> list[TokenInfo]:
    """A user's live tokens, never their secrets: your own, or anyone's for a superuser."""
    return platform.auth.list_tokens(caller, user)


@router.delete("/users/{user}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_user_token(user: str, token_id: str, caller: Caller, platform: PlatformDep) -> None:
    """Revoke one of a user's tokens (yours, or anyone's for a superuser); it stops at once."""
    platform.auth.revoke_user_token(caller, user, token_id)


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, caller: Caller, platform: PlatformDep) -> NewToken:
    return platform.auth.create_token(caller, body.name, body.ttl_s)


@router.get("/tokens")
def list_tokens(caller: Caller, platform: PlatformDep) -> list[TokenInfo]:
    """Your own live tokens (ids, names, scopes, dates; never the secrets)."""
    return platform.auth.list_tokens(caller, caller.user_name)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, caller: Caller, platform: PlatformDep) -> None:
    platform.auth.revoke_token(caller, token_id)


@router.post("/projects", status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, caller: Caller, platform: PlatformDep) -> Project:
    return platform.auth.create_project(caller, body.name, body.description)


@router.get("/projects")
def list_projects(caller: Caller, platform: PlatformDep) -> list[Project]:
    return platform.auth.list_projects(caller)


@router.get("/projects/{project}")
def get_project(access: Viewer, platform: PlatformDep) -> Project:
    return platform.auth.get_project(access.principal, access.project)


@router.get("/projects/{project}/members")
def list_members(access: Viewer, platform: PlatformDep) -> list[Member]:
    return platform.auth.list_members(access.principal, access.project)


@router.put("/projects/{project}/members")
def set_member(body: MemberSet, access: Admin, platform: PlatformDep) -> Member:
    return platform.auth.set_member(access.principal, access.project, body.user, body.role)
