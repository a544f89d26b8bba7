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
    UserCreate,
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
    return platform.auth.create_user(caller, body.name, body.is_superuser)


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, caller: Caller, platform: PlatformDep) -> NewToken:
    return platform.auth.create_token(caller, body.name, body.ttl_s)


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
