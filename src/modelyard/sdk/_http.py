"""The client's one HTTP choke point: auth header, JSON, and errors re-raised as our classes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from modelyard.core.errors import Unauthenticated, Unavailable, error_from_dict

# The longest Retry-After a 429 may ask for and still be waited out here; longer means the
# server does not expect to take the request soon (a model larger than the serving budget).
MAX_RETRY_AFTER_S = 10.0
CHUNK = 1024 * 1024  # bytes per read of a streamed upload


class Transport:
    """`busy_patience_s`: how long, in all, a call waits out 429 answers (a busy server sheds
    load: the request was not run) before it raises ResourceExhausted. A request is sent again
    only when its body can be (bytes, JSON, form data, a `FileBody` of a seekable file; not
    another stream)."""

    def __init__(self, http: httpx.Client, project: str | None,
                 headers: dict[str, str] | None = None, busy_patience_s: float = 30.0) -> None:
        self.http = http
        self.project = project
        self.headers = headers or {}
        self.busy_patience_s = busy_patience_s
        self.no_token_looked_in: list[str] = []  # set when no token was found (see Client)

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
        busy = _Busy(self.busy_patience_s if _replayable(kwargs) else 0.0)
        while True:
            try:
                resp = self.http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                raise Unavailable(f"cannot reach the modelyard server at {self.http.base_url}: {e}") from e
            if not busy.wait_out(resp):
                break
            _rewind(kwargs)
        self._raise_for_error(resp)
        return resp

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[bytes]:
        kwargs["headers"] = {**self.headers, **(kwargs.get("headers") or {})}
        busy = _Busy(self.busy_patience_s if _replayable(kwargs) else 0.0)
        while True:
            with self.http.stream(method, path, **kwargs) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    if busy.wait_out(resp):
                        _rewind(kwargs)
                        continue
                    self._raise_for_error(resp)
                yield from resp.iter_bytes()
                return

    def _raise_for_error(self, resp: httpx.Response) -> None:
        try:
            raise_for_error(resp)
        except Unauthenticated as e:
            if not self.no_token_looked_in:
                raise
            raise Unauthenticated(
                f"{e.message}. No token was given and none was found: looked in "
                f"{', '.join(self.no_token_looked_in)}. Pass --token / token=, set "
                "MODELYARD_TOKEN, or set MODELYARD_HOME to the server's data dir",
                {**e.details, "looked_in": self.no_token_looked_in}) from None

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


class _Busy:
    """Waits out the 429s of one call, each as long as its Retry-After says, `patience_s` in all."""

    def __init__(self, patience_s: float) -> None:
        self.deadline = time.monotonic() + patience_s

    def wait_out(self, resp: httpx.Response) -> bool:
        """True after sleeping when `resp` is a 429 worth sending the request again for."""
        if resp.status_code != 429:
            return False
        try:
            after = float(resp.headers.get("retry-after", "1"))
        except ValueError:
            return False  # an HTTP date: nothing this server sends
        after = max(after, 0.05) * random.uniform(1.0, 1.25)  # callers shed together spread out
        if after > MAX_RETRY_AFTER_S or time.monotonic() + after > self.deadline:
            return False
        resp.close()
        time.sleep(after)
        return True


class FileBody:
    """A binary file's bytes, from where it stands, as a request body streamed in chunks that
    can be sent again (after a 429) when the file is seekable: `rewind` seeks back to the start.
    `progress(n)` hears each chunk's size and, when the body starts over, minus the bytes sent
    before."""

    def __init__(self, f: BinaryIO, progress: Callable[[int], None] | None = None) -> None:
        self.f = f
        self.progress = progress
        try:
            self.start: int | None = f.tell() if f.seekable() else None
        except (AttributeError, OSError):  # a file-like object without a usable position
            self.start = None
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.f.read(CHUNK):
            self.sent += len(chunk)
            if self.progress:
                self.progress(len(chunk))
            yield chunk

    @property
    def rewindable(self) -> bool:
        return self.start is not None

    def rewind(self) -> None:
        if self.start is None:
            raise ValueError("a stream that cannot seek cannot be sent again")
        self.f.seek(self.start)
        if self.progress and self.sent:
            self.progress(-self.sent)
        self.sent = 0


def _rewind(kwargs: dict[str, Any]) -> None:
    """Before a request is sent again: a file body starts over."""
    content = kwargs.get("content")
    if isinstance(content, FileBody):
        content.rewind()


def _replayable(kwargs: dict[str, Any]) -> bool:
    """Whether the request's body can be sent a second time (no iterator or open file in it,
    other than a `FileBody` that can seek back)."""
    content = kwargs.get("content")
    if isinstance(content, FileBody):
        return content.rewindable
    if content is not None and not isinstance(content, bytes | bytearray | str):
        return False
    files = kwargs.get("files")
    items = files.values() if isinstance(files, dict) else files or ()
    for item in items:
        value = item[1] if isinstance(item, tuple) else item
        data = value[1] if isinstance(value, tuple) else value
        if not isinstance(data, bytes | bytearray | str):
            return False
    return True


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
