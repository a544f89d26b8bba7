"""Limits on what a request may carry, enforced before any route reads it: body size, JSON
nesting, integers beyond 64 bits."""

from __future__ import annotations

import re
import typing

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.errors import InvalidArgument, PayloadTooLarge
from modelyard.server.errors import error_body


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _reject(send, self.max_bytes, scope.get("path", ""))
                return
        seen = 0
        limit = self.max_bytes
        exceeded = started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            return msg

        async def guarded(msg: Message) -> None:
            # Whatever the app makes of the cut-off body (body parsers turn any error into a
            # 400), the client gets the 413 below.
            nonlocal started
            if exceeded:
                return
            started = True
            await send(msg)

        try:
            await self.app(scope, limited, guarded)
        except PayloadTooLarge:
            if not exceeded:
                raise
        if exceeded and not started:
            await _reject(send, limit, scope.get("path", ""))


async def _reject(send: Send, limit: int, path: str) -> None:
    import json

    err = PayloadTooLarge(
        f"request body is larger than the limit of {limit} bytes; upload in parts or raise "
        "MODELYARD_API__MAX_BODY_BYTES"
    )
    body = json.dumps(error_body(err, path)).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# Deeper than this is no document a route here takes; pydantic cannot serialize much deeper
# (a stored 900-level value made every later read of it fail), and json recursion ends at ~1000.
MAX_JSON_DEPTH = 64


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays/objects deeper than `limit` (brackets in strings ignored).

    Strings are cut out, then the innermost `[]` pairs peeled off layer by layer: every step
    runs in C, so a large flat batch costs a few passes, never a Python loop per byte.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    text = _STRINGS.sub(b"", body).translate(_TO_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        shorter = text.replace(b"[]", b"")
        if not shorter or shorter == text:  # fully peeled, or unbalanced (the parser says so)
            return False
        text = shorter
    return True


class JsonGuard:
    """Refuses a JSON body that is not UTF-8, nests deeper than MAX_JSON_DEPTH or holds an
    integer beyond 64 bits.

    Runs inside BodyLimit, so the body it buffers is already bounded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, _replay([msg]), send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            problem = f"the JSON body is not valid UTF-8 (byte {e.start}); send UTF-8 text"
        if problem is None and json_too_deep(body):
            problem = (f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; flatten it")
        if problem is not None:
            await _send_error(send, 400, InvalidArgument(problem).to_dict())
            return
        field = json_int_out_of_range(body)
        if field is not None:
            await _send_error(send, 400, _range_error(field, "body field").to_dict())
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body,
                                        "more_body": False}], receive), send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.split(b";")[0].strip().lower().endswith(b"json")
    return False


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _send_error(send: Send, status: int, payload: dict[str, object]) -> None:
    import json

    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---- integers: every one a request carries fits in 64 bits ---------------------------------
# Past that range SQLite and PostgreSQL cannot bind it (a 500) and Arrow cannot encode it, so it
# is refused here once, for every route, with a 400 naming the field.

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONG_DIGITS = re.compile(rb"\d{19,}")  # the shortest integer text that may be out of range


def _out_of_range(value: int) -> bool:
    return not INT64_MIN <= value <= INT64_MAX


def _range_error(field: str, where: str) -> InvalidArgument:
    return InvalidArgument(f"{where} {field!r} is outside the 64-bit integer range "
                           f"({INT64_MIN}..{INT64_MAX}); send a smaller number",
                           {"field": field})


def json_int_out_of_range(body: bytes) -> str | None:
    """The path (`a.b[2].c`) of the first integer in a JSON text beyond 64 bits, else None.

    Cheap when none can be: only a run of 19+ digits outside strings makes it parse the body.
    """
    if not _LONG_DIGITS.search(body) or not _LONG_DIGITS.search(_STRINGS.sub(b'""', body)):
        return None
    import json

    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's parser says so
    stack: list[tuple[str, object]] = [("", doc)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and _out_of_range(v):
            return path or "body"
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in reversed(list(enumerate(v))))
    return None


_INT_PARAMS: dict[int, tuple[tuple[str, str], ...]] = {}


def _is_int(annotation: object) -> bool:
    if annotation is int:
        return True
    args = typing.get_args(annotation)  # int | None, Annotated[int, ...], list[int]
    return any(_is_int(a) for a in args if a is not type(None))


def _int_params(route: APIRoute) -> tuple[tuple[str, str], ...]:
    """(where, name) of the route's integer query and path parameters, its dependencies' too."""
    found = _INT_PARAMS.get(id(route))
    if found is None:
        names: list[tuple[str, str]] = []
        pending = [route.dependant]
        while pending:
            dep = pending.pop()
            names += [("query parameter", f.alias) for f in dep.query_params
                      if _is_int(f.field_info.annotation)]
            names += [("path parameter", f.alias) for f in dep.path_params
                      if _is_int(f.field_info.annotation)]
            pending.extend(dep.dependencies)
        found = _INT_PARAMS[id(route)] = tuple(dict.fromkeys(names))
    return found


async def bounded_integers(request: Request) -> None:
    """App-wide dependency: integer query and path parameters within 64 bits (JSON bodies are
    checked by JsonGuard before routing)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    for where, name in _int_params(route):
        values = (request.path_params.get(name),) if where == "path parameter" \
            else request.query_params.getlist(name)
        for v in values:
            text = str(v).strip() if v is not None else ""
            if len(text.lstrip("+-")) >= 19 and text.lstrip("+-").isdigit() \
                    and _out_of_range(int(text)):
                raise _range_error(name, where)
