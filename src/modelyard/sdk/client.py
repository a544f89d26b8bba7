"""`modelyard.Client`: typed access to every component of a modelyard server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from modelyard.sdk._http import Transport


def default_token() -> tuple[str | None, list[str]]:
    """The token to use when none is given, and where it was looked for, in order:
    $MODELYARD_TOKEN, the admin-token file of $MODELYARD_HOME, then that of ~/.modelyard (the
    server's default home: a server started without MODELYARD_HOME writes it there)."""
    token = os.environ.get("MODELYARD_TOKEN")
    if token:
        return token, []
    looked = ["$MODELYARD_TOKEN"]
    homes = [Path(h) for h in [os.environ.get("MODELYARD_HOME")] if h]
    homes.append(Path.home() / ".modelyard")
    for home in dict.fromkeys(homes):
        path = home / "admin-token"
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            looked.append(str(path))
            continue
        except OSError as e:  # unreadable (not ours, a directory): say so
            looked.append(f"{path} ({e.strerror or type(e).__name__})")
            continue
        if token:
            return token, looked
        looked.append(f"{path} (empty)")
    return None, looked


class Client:
    """A client bound to one server and, optionally, one default project.

    >>> c = Client("http://127.0.0.1:8600", token="myd_...", project="demo")
    >>> c.datasets.list()

    Errors from the server are raised as the same `modelyard.core.errors` classes.
    Pass `http=` (any `httpx.Client`, e.g. FastAPI's TestClient) to talk to an app in-process.
    A busy server answers 429 with Retry-After (it ran nothing); a call waits that out and
    sends the request again, up to `busy_patience_s` in all, then raises ResourceExhausted.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        project: str | None = None,
        *,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        busy_patience_s: float = 30.0,
    ) -> None:
        url = url or os.environ.get("MODELYARD_URL", "http://127.0.0.1:8600")
        looked: list[str] = []
        if token is None:
            token, looked = default_token()
        project = project or os.environ.get("MODELYARD_PROJECT")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._owns_http = http is None
        if http is None:
            http = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        self._http = http
        # Headers go on each request, so clients sharing one httpx.Client keep their own token.
        self._t = Transport(http, project, headers, busy_patience_s)
        if not token and looked:  # a 401 then says where a token was looked for
            self._t.no_token_looked_in = looked
        from modelyard.sdk.datasets import DatasetsAPI
        from modelyard.sdk.hpo import HpoAPI
        from modelyard.sdk.metrics import MetricsAPI
        from modelyard.sdk.registry import RegistryAPI
        from modelyard.sdk.serving import ServingAPI
        from modelyard.sdk.training import TrainingAPI
        from modelyard.sdk.workflows import WorkflowsAPI

        self.datasets = DatasetsAPI(self._t)
        self.training = TrainingAPI(self._t)
        self.hpo = HpoAPI(self._t)
        self.registry = RegistryAPI(self._t)
        self.serving = ServingAPI(self._t)
        self.metrics = MetricsAPI(self._t)
        self.workflows = WorkflowsAPI(self._t)

    @property
    def project(self) -> str | None:
        return self._t.project

    def use_project(self, name: str) -> Client:
        """Make `name` the default project of later calls; returns self."""
        self._t.project = name
        return self

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # identity and projects
    def whoami(self) -> dict[str, Any]:
        return self._t.get("/api/v1/whoami")  # type: ignore[no-any-return]

    def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        return self._t.post("/api/v1/projects", json={"name": name, "description": description})  # type: ignore[no-any-return]

    def list_projects(self) -> list[dict[str, Any]]:
        return self._t.get("/api/v1/projects")  # type: ignore[no-any-return]

    def get_project(self, name: str) -> dict[str, Any]:
        return self._t.get(f"/api/v1/projects/{name}")  # type: ignore[no-any-return]

    def create_user(self, name: str, is_superuser: bool = False,
                    can_create_projects: bool = False) -> dict[str, Any]:
        """Creates a user; the answer holds its first token (shown once)."""
        return self._t.post("/api/v1/users", json={  # type: ignore[no-any-return]
            "name": name, "is_superuser": is_superuser,
            "can_create_projects": can_create_projects})

    def set_grants(self, user: str, *, can_create_projects: bool) -> dict[str, Any]:
        """Superusers: let `user` create projects (or take that right back)."""
        return self._t.put(f"/api/v1/users/{user}/grants",  # type: ignore[no-any-return]
                           json={"can_create_projects": can_create_projects})

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Live tokens (never their secrets) of `user`, default your own; a superuser may
        name anyone."""
        if user is None:
            return self._t.get("/api/v1/tokens")  # type: ignore[no-any-return]
        return self._t.get(f"/api/v1/users/{user}/tokens")  # type: ignore[no-any-return]

    def revoke_token(self, token_id: str, user: str | None = None) -> None:
        """Revokes a token of `user` (default your own; a superuser may name anyone)."""
        if user is None:
            self._t.delete(f"/api/v1/tokens/{token_id}")
        else:
            self._t.delete(f"/api/v1/users/{user}/tokens/{token_id}")

    def set_member(self, project: str, user: str, role: str) -> dict[str, Any]:
        return self._t.put(f"/api/v1/projects/{project}/members", json={"user": user, "role": role})  # type: ignore[no-any-return]

    def create_token(self, name: str = "cli", ttl_s: int | None = None) -> dict[str, Any]:
        return self._t.post("/api/v1/tokens", json={"name": name, "ttl_s": ttl_s})  # type: ignore[no-any-return]
