"""Authorization of every project route, generated from the app's own route table.

Each route under `/projects/{project}` is called on project `alpha` with dummy values for its
other path parameters: without a token (401), with the token of another project's admin or a
job token scoped to another project (404: outsiders learn nothing) and with a viewer's token
(403 wherever the route needs editor or admin). Routes that other components add are picked up without touching this file.

A few project routes are not called with API tokens but with a one-time launch ticket (a job
process fetching its credentials): they are listed in TICKET_ROUTES, and every API token, the
superuser's included, gets 401 there. The server-wide user routes that only a superuser may use
for other users (grants, other users' tokens) are refused alike to everyone else.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from modelyard.core.auth import Role
from modelyard.server.app import ROUTERS
from modelyard.server.deps import LaunchTicket, get_principal
from tests.conftest import Team, bearer

# Routes that exist today; the discovery must find at least these.
KNOWN = {
    ("GET", "/api/v1/projects/{project}"),
    ("GET", "/api/v1/projects/{project}/members"),
    ("PUT", "/api/v1/projects/{project}/members"),
}


# Project routes authenticated by a launch ticket instead of an API token.
TICKET_ROUTES = {("POST", "/api/v1/projects/{project}/jobs/{job_id}/credentials")}

# Server-wide routes where only a superuser may act on another user: (method, path, body).
SUPERUSER_ON_OTHERS = [
    ("PUT", "/api/v1/users/{user}/grants", {"can_create_projects": True}),
    ("GET", "/api/v1/users/{user}/tokens", None),
    ("DELETE", "/api/v1/users/{user}/tokens/tok_dummy", None),
]

# Routes anyone may call: probes, metrics exposition, the inference server's metadata, the
# console's page shell and static assets (it holds no data; every call it makes sends a token),
# and the user guide's static pages.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready",
          "/ui", "/ui/", "/ui/static/{path:path}", "/docs/guide", "/docs/guide/{path:path}"}


@dataclass(frozen=True)
class ProjectRoute:
    method: str
    path: str
    url: str  # the path with `alpha` and dummy values filled in
    required: Role | None  # from the access dependency (`required_role`), None if it has none
    ticket: bool = False  # authenticated by a launch ticket (`ticket_auth`), not a token

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _required_role(dependant: Dependant) -> Role | None:
    found = getattr(dependant.call, "required_role", None)
    for sub in dependant.dependencies:
        sub_role = _required_role(sub)
        if sub_role is not None:
            found = sub_role if found is None else max(found, sub_role)
    return found


def _ticket_auth(dependant: Dependant) -> bool:
    return bool(getattr(dependant.call, "ticket_auth", False)) or any(
        _ticket_auth(sub) for sub in dependant.dependencies)


def _needs_principal(dependant: Dependant) -> bool:
    return dependant.call is get_principal or any(
        _needs_principal(sub) for sub in dependant.dependencies)


def _authenticated(dependant: Dependant) -> bool:
    return _needs_principal(dependant) or _ticket_auth(dependant)


def _path_params(dependant: Dependant) -> dict[str, Any]:
    params = {p.alias: p.field_info.annotation for p in dependant.path_params}
    for sub in dependant.dependencies:
        params.update(_path_params(sub))
    return params


def _dummy(annotation: Any) -> str:
    args = typing.get_args(annotation) or (annotation,)
    if int in args:
        return "1"
    if float in args:
        return "1.5"
    return "dummy1"


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every API route, including those of included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI keeps included routes as flat APIRoutes
        for route in routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods), route.dependant
        return
    for ctx in iter_route_contexts(routes):
        original = ctx.original_route
        if isinstance(original, APIRoute):
            dependant = getattr(ctx, "dependant", None) or original.dependant
            yield ctx.path or original.path, set(ctx.methods or original.methods), dependant


def _fill(path: str, dependant: Dependant) -> str:
    url = path
    for name, annotation in _path_params(dependant).items():
        value = "alpha" if name == "project" else _dummy(annotation)
        url = url.replace("{" + name + "}", value).replace("{" + name + ":path}", value)
    return url


def project_routes(app: FastAPI) -> list[ProjectRoute]:
    found = []
    for path, methods, dependant in _api_routes(app.routes):
        if "{project}" not in path:
            continue
        url = _fill(path, dependant)
        required = _required_role(dependant)
        ticket = _ticket_auth(dependant)
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            found.append(ProjectRoute(method, path, url, required, ticket))
    return found


def _router_paths() -> set[tuple[str, str]]:
    """Project routes declared by every router in ROUTERS, read from the routers themselves."""
    paths = set()
    for module, attr in ROUTERS:
        try:
            router = getattr(import_module(module), attr, None)
        except ModuleNotFoundError:
            continue
        for path, methods, _ in _api_routes(getattr(router, "routes", [])):
            if "{project}" in path:
                paths |= {(m, path) for m in methods - {"HEAD", "OPTIONS"}}
    return paths


@pytest.fixture
def routes(api: TestClient) -> list[ProjectRoute]:
    found = project_routes(api.app)  # type: ignore[arg-type]
    seen = {(r.method, r.path) for r in found}
    assert KNOWN <= seen, f"route discovery missed {KNOWN - seen}"
    assert _router_paths() <= seen, f"routers not mounted: {_router_paths() - seen}"
    return found


def _call(api: TestClient, route: ProjectRoute, token: str | None) -> int:
    headers = bearer(token) if token else {}
    return api.request(route.method, route.url, headers=headers).status_code


def _refusal(api: TestClient, route: ProjectRoute, token: str | None) -> tuple[int, str, Any]:
    """Status, error code and details; the details tell the access check's refusal (it names
    the project) from a handler's own 404 for a dummy id that does not exist."""
    headers = bearer(token) if token else {}
    r = api.request(route.method, route.url, headers=headers)
    try:
        err = r.json().get("error") or {}
    except ValueError:
        err = {}
    if not isinstance(err, dict):
        err = {}
    return r.status_code, err.get("code", ""), err.get("details", {})


def test_every_project_route_checks_access(routes: list[ProjectRoute]) -> None:
    unchecked = [str(r) for r in routes if r.required is None and not r.ticket]
    assert unchecked == [], (
        "these project routes take no `access: Viewer | Editor | Admin` dependency: "
        f"{unchecked}")


def test_writes_need_more_than_viewer(routes: list[ProjectRoute]) -> None:
    weak = [str(r) for r in routes
            if r.method != "GET" and r.required is not None and r.required < Role.editor]
    allowed = {"POST"}  # read-only queries sent as POST (search, predict) may take Viewer
    assert [w for w in weak if w.split()[0] not in allowed] == [], weak


def test_no_token_is_401_everywhere(api: TestClient, team: Team,
                                    routes: list[ProjectRoute]) -> None:
    wrong = {str(r): got for r in routes
             if (got := _refusal(api, r, None))[:2] != (401, "unauthenticated")}
    assert wrong == {}


@pytest.mark.parametrize("who", ["admin of beta", "superuser's job token for beta"])
def test_other_projects_tokens_get_404_everywhere(api: TestClient, team: Team,
                                                  routes: list[ProjectRoute], who: str) -> None:
    if who == "admin of beta":
        token = team.outsider
    else:  # a superuser's token, usable only in beta: the scope alone keeps alpha out
        auth = api.app.state.platform.auth  # type: ignore[attr-defined]
        token = auth.scoped_token("admin", "beta", Role.editor, 3600, "job")
    # The refusal must come from the access check (details name the project), not from a
    # handler that looked for a dummy id and found nothing: that 404 would hide a missing check.
    wrong = {str(r): got for r in routes if not r.ticket
             and (got := _refusal(api, r, token)) != (404, "not_found", {"project": "alpha"})}
    assert wrong == {}


def test_ticket_routes_are_the_known_ones_and_refuse_every_api_token(
        api: TestClient, team: Team, routes: list[ProjectRoute]) -> None:
    ticketed = [r for r in routes if r.ticket]
    assert {(r.method, r.path) for r in ticketed} == TICKET_ROUTES
    assert getattr(typing.get_args(LaunchTicket)[1].dependency, "ticket_auth", False)
    job_token = api.app.state.platform.auth.scoped_token(  # type: ignore[attr-defined]
        "admin", "alpha", Role.editor, 3600, "job")
    wrong = {}
    for r in ticketed:
        for who, token in [("superuser", team.admin), ("admin of alpha", team.owner),
                           ("editor", team.editor), ("job token", job_token)]:
            if (got := _refusal(api, r, token))[:2] != (401, "unauthenticated"):
                wrong[f"{r} as {who}"] = got
    assert wrong == {}


@pytest.mark.parametrize(("method", "path", "body"), SUPERUSER_ON_OTHERS)
def test_only_a_superuser_acts_on_other_users(api: TestClient, team: Team, method: str,
                                              path: str, body: Any) -> None:
    job_token = api.app.state.platform.auth.scoped_token(  # type: ignore[attr-defined]
        "admin", "alpha", Role.admin, 3600, "job")
    for token in (team.viewer, team.editor, team.owner, team.outsider, job_token):
        answers = set()
        # An existing user and a name nobody has: the refusal must not tell them apart.
        for target in ("admin", "nobody-here"):
            r = api.request(method, path.format(user=target), json=body, headers=bearer(token))
            assert r.status_code == 403, (target, r.text)
            answers.add(r.content)
        assert len(answers) == 1, answers


def test_viewer_is_refused_every_editor_or_admin_route(api: TestClient, team: Team,
                                                       routes: list[ProjectRoute]) -> None:
    guarded = [r for r in routes
               if r.method != "GET" and r.required is not None and r.required >= Role.editor]
    assert guarded, "expected at least one write route"
    wrong = {}
    for r in guarded:
        status, code, details = _refusal(api, r, team.viewer)
        if (status, code) != (403, "permission_denied") or details.get("role") != "viewer":
            wrong[str(r)] = (status, code, details)
    assert wrong == {}


def test_viewer_passes_the_access_check_of_read_routes(api: TestClient, team: Team,
                                                       routes: list[ProjectRoute]) -> None:
    reads = [r for r in routes if r.method == "GET" and r.required == Role.viewer]
    wrong = {str(r): s for r in reads if (s := _call(api, r, team.viewer)) in (401, 403)}
    assert wrong == {}


def test_only_probes_are_public_and_everything_else_needs_a_token(api: TestClient) -> None:
    public, wrong = [], {}
    for path, methods, dependant in _api_routes(api.app.routes):  # type: ignore[attr-defined]
        if not _authenticated(dependant):
            public.append(path)
            continue
        for method in methods - {"HEAD", "OPTIONS"}:
            status = api.request(method, _fill(path, dependant)).status_code
            if status != 401:
                wrong[f"{method} {path}"] = status
    assert set(public) <= PUBLIC, f"routes that skip authentication: {set(public) - PUBLIC}"
    assert wrong == {}
    assert "/healthz" in public


def test_a_missing_project_is_404_for_a_superuser_everywhere(api: TestClient, team: Team,
                                                             routes: list[ProjectRoute]) -> None:
    # A superuser may act in every project, but one that does not exist is not an empty one:
    # `GET .../nosuchproject/models` answered 200 [] and writes went to a project nobody has.
    wrong = {}
    for r in routes:
        if r.ticket:
            continue
        url = r.url.replace("/projects/alpha", "/projects/nosuchproject", 1)
        got = _refusal(api, ProjectRoute(r.method, r.path, url, r.required), team.admin)
        if got != (404, "not_found", {"project": "nosuchproject"}):
            wrong[str(r)] = got
    assert wrong == {}
    assert api.get("/api/v1/projects/alpha/models", headers=bearer(team.admin)).status_code == 200
