"""The client's one HTTP choke point: auth header, JSON, and errors re-raised as our classes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from modelyard.core.errors import Unavailable, error_from_dict


class Transport:
    def __init__(self, http: httpx.Client, project: str | None,
                 headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.project = project
        self.headers = headers or {}

    def p(self, path: str, project: str | None = None) -> str:
        """A project-scoped path: `p("/datasets")` → `/api/v1/projects/<project>/datasets`."""
        name = project or self.project
        if not name:
            raise ValueError("no project: pass project= to Client() or to the call")
        return f"/api/v1/projects/{quote(name, safe='')}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.send(method, path, **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.content

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise Unavailable(f"cannot reach the modelyard server at {self.http.base_url}: {e}") from e
        raise_for_error(resp)
        return resp

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[bytes]:
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        with self.http.stream(method, path, **kwargs) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise_for_error(resp)
            yield from resp.iter_bytes()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def raise_for_error(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    raise error_from_dict(resp.status_code, body)


def poll_until(get: Callable[[], dict[str, Any]], terminal: tuple[str, ...], timeout: float,
               poll_s: float, what: str, details: Callable[[dict[str, Any]], dict[str, Any]]
               ) -> dict[str, Any]:
    """Calls `get` until its `state` is terminal; raises Unavailable (with the last state and
    `details`) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        if got["state"] in terminal:
            return got
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} is still {got['state']} after {timeout:g} s", details(got))
        time.sleep(poll_s)
