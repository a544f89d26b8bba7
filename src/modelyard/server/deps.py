"""FastAPI dependencies: the platform, the caller, and the caller's access to a project.

Every project route takes one of `Viewer`, `Editor`, `Admin`: the role check cannot be
forgotten because the project path parameter is only reachable through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelyard.core.auth import Principal, Role

if TYPE_CHECKING:
    from modelyard.server.platform import Platform

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer <token>`")


def get_platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


async def _platform(request: Request) -> Platform:
    # async: a plain function dependency would cost a thread-pool round trip per request
    return get_platform(request)


PlatformDep = Annotated["Platform", Depends(_platform)]


async def get_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller; a token seen moments ago is answered from memory, others in the pool."""
    auth = get_platform(request).auth
    token = creds.credentials if creds else None
    principal = auth.cached_principal(token) if token else None
    if principal is None:
        principal = await run_in_threadpool(auth.authenticate, token)
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class Access:
    """The caller, the project of the route and the caller's role there."""

    principal: Principal
    project: str
    role: Role

    @property
    def user(self) -> str:
        return self.principal.user_name


def _access(required: Role):  # type: ignore[no-untyped-def]
    async def dep(  # no I/O: the principal carries its roles
        request: Request,
        principal: Caller,
        project: Annotated[str, Path(description="project name", max_length=100)],
    ) -> Access:
        role = get_platform(request).auth.require(principal, project, required)
        return Access(principal, project, role)

    dep.required_role = required  # type: ignore[attr-defined]  # read by the authz matrix test
    return dep


Viewer = Annotated[Access, Depends(_access(Role.viewer))]
Editor = Annotated[Access, Depends(_access(Role.editor))]
Admin = Annotated[Access, Depends(_access(Role.admin))]


@dataclass(frozen=True)
class TicketAccess:
    """A call authenticated by a one-time launch ticket (not an API token): the ticket, and the
    project of the route. The route's use case checks the ticket; nothing else is granted."""

    ticket: str | None
    project: str


async def _launch_ticket(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    project: Annotated[str, Path(description="project name", max_length=100)],
) -> TicketAccess:
    return TicketAccess(creds.credentials if creds else None, project)


_launch_ticket.ticket_auth = True  # type: ignore[attr-defined]  # read by the authz matrix test
LaunchTicket = Annotated[TicketAccess, Depends(_launch_ticket)]
