"""The hot routes without the framework: `POST .../deployments/{name}/predict` and the Open
Inference Protocol's `POST /v2/models/{name}/infer`.

At a few thousand requests per second per core, FastAPI's routing (a regex per route), its
dependency solving and request-model validation cost more CPU than the model itself. This ASGI
layer answers the common case straight away: a JSON body `{"inputs": [...]}` (nothing else, no
query string), from a caller whose token this process looked up moments ago and who may read
the project. Everything else, and anything it is unsure of, goes to the app unchanged (the body
it read is replayed), so validation messages, authentication and errors have one source.
A v2 infer body that does not parse goes to the route too, which says what is wrong with it.

What it does per request is what the route does: `ServingService.predict` (as plain values,
`.predicted`, written as the route's JSON) or `.infer`, errors
through `server.errors.error_response` (`_v2.error_response` under /v2), the caller's role
through `AuthService.require`, the body limit and the JSON depth guard.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.auth import Role
from modelyard.core.errors import ModelyardError
from modelyard.core.ids import is_name
from modelyard.server.errors import error_response
from modelyard.server.limits import json_too_deep
from modelyard.server.telemetry import api_families
from modelyard.serving import _v2
from modelyard.serving.models import MAX_PREDICT_INPUTS

if TYPE_CHECKING:
    from modelyard.server.platform import Platform

log = logging.getLogger("modelyard.serving")

_PATH = re.compile(r"^/api/v1/projects/([^/]+)/deployments/([^/]+)/predict$")
_V2_PATH = re.compile(r"^/v2/models/([^/]+)/infer$")
_PREDICT_ROUTE = "/api/v1/projects/{project}/deployments/{name}/predict"  # the routes'
_V2_ROUTE = "/v2/models/{model}/infer"  # templates, as the app's request metrics label them
_PROJECT = b"x-modelyard-project"
_HEADER_LENGTH = _v2.HEADER_LENGTH.lower().encode()


class PredictFastPath:
    def __init__(self, app: ASGIApp, platform: Platform, max_bytes: int) -> None:
        self.app = app
        self.platform = platform
        self.max_bytes = max_bytes
        self.answered = 0  # requests answered here, not by the app
        # counted in the API's request families as the app counts its own (server/telemetry.py)
        self.api = api_families(platform.prometheus)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            match = _PATH.match(scope["path"])
            if match is not None:
                await self._predict(scope, receive, send, match.group(1), match.group(2))
                return
            match = _V2_PATH.match(scope["path"])
            if match is not None:
                await self._infer(scope, receive, send, match.group(1))
                return
        await self.app(scope, receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send, project: str,
                       name: str) -> None:
        body = await self._claim(scope, receive, send, project, name, json_only=True)
        if body is None:
            return
        inputs = _inputs(body)
        if inputs is None:  # the app answers with its own 4xx for bad bodies
            await self.app(scope, _replay(body, False, None, receive), send)
            return
        self.answered += 1
        started = time.perf_counter()
        try:
            preds, version, request_id, model = await self.platform.serving.predicted(
                project, name, inputs)
        except ModelyardError as e:
            await self._answer_error(scope, receive, send, e, _PREDICT_ROUTE, started)
            return
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            await self._answer_error(scope, receive, send, _INTERNAL, _PREDICT_ROUTE, started)
            return
        # `PredictResponse`'s JSON, field for field (a test compares it with the route's)
        self.api.observe("POST", _PREDICT_ROUTE, 200, time.perf_counter() - started)
        await _send(send, orjson.dumps({"predictions": preds, "model_version": version,
                                        "request_id": request_id, "deployment": name,
                                        "model": model}),
                    [(b"content-type", b"application/json")])

    async def _answer_error(self, scope: Scope, receive: Receive, send: Send,
                            e: ModelyardError, route: str, started: float) -> None:
        self.api.observe("POST", route, e.status, time.perf_counter() - started)
        respond = _v2.error_response if route == _V2_ROUTE else error_response
        await respond(e)(scope, receive, send)

    async def _infer(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        project = _header(scope, _PROJECT).decode("latin-1")
        body = await self._claim(scope, receive, send, project, name, json_only=False)
        if body is None:
            return
        raw_length = _header(scope, _HEADER_LENGTH)
        try:  # (parse_request refuses JSON nested too deep, so json.loads cannot recurse out)
            req, blobs = _v2.parse_request(body, raw_length.decode("latin-1")
                                           if raw_length else None)
        except (ModelyardError, ValueError):  # the route says what is wrong
            await self.app(scope, _replay(body, False, None, receive), send)
            return
        self.answered += 1
        started = time.perf_counter()
        try:
            outcome = await self.platform.serving.infer(project, name, req, None, blobs)
            out, headers = _v2.render(outcome, _v2.wants_binary(req))
        except ModelyardError as e:
            await self._answer_error(scope, receive, send, e, _V2_ROUTE, started)
            return
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            await self._answer_error(scope, receive, send, _INTERNAL, _V2_ROUTE, started)
            return
        self.api.observe("POST", _V2_ROUTE, 200, time.perf_counter() - started)
        await _send(send, out, [(k.lower().encode(), v.encode()) for k, v in headers.items()])

    async def _claim(self, scope: Scope, receive: Receive, send: Send, project: str, name: str,
                     json_only: bool) -> bytes | None:
        """The whole body of a request this layer may answer; else None, with the app handed
        the request (a caller it does not know, 413 past the limit, the client's departure)."""
        if not is_name(name) or not self._admitted(scope, project, json_only):
            await self.app(scope, receive, send)
            return None
        chunks: list[bytes] = []
        size, more = 0, True
        while more and size <= self.max_bytes:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, _replay(b"".join(chunks), True, msg, receive), send)
                return None
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if more or size > self.max_bytes:
            await self.app(scope, _replay(body, more, None, receive), send)
            return None
        return body

    def _admitted(self, scope: Scope, project: str, json_only: bool) -> bool:
        """A remembered token with at least the viewer role in `project` (and a JSON body,
        where `json_only`: v2 bodies may be binary)."""
        if not is_name(project):
            return False
        auth = ctype = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-type":
                ctype = value
        if (json_only and not ctype.startswith(b"application/json")) or \
                auth[:7].lower() != b"bearer ":
            return False
        auth_service = self.platform.auth
        principal = auth_service.cached_principal(auth[7:].decode("latin-1").strip())
        if principal is None:
            return False
        try:
            auth_service.require(principal, project, Role.viewer)
        except ModelyardError:
            return False  # the route says why
        return True


_INTERNAL = ModelyardError("internal error; the server log has the details")


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


async def _send(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _inputs(body: bytes) -> list[object] | None:
    """`inputs` of a body that is exactly `{"inputs": [1..4096 items]}`, else None."""
    if json_too_deep(body):
        return None
    try:
        # orjson refuses what the standard parser would take with a twist (NaN, integers past
        # 64 bits): such a body goes to the route, which parses it as it always did
        doc = orjson.loads(body)
    except (ValueError, RecursionError):
        return None
    if type(doc) is not dict or len(doc) != 1:
        return None
    inputs = doc.get("inputs")
    if type(inputs) is not list or not 1 <= len(inputs) <= MAX_PREDICT_INPUTS:
        return None
    return inputs


def _replay(body: bytes, more: bool, then: Message | None, receive: Receive) -> Receive:
    """A `receive` that hands out what was already read (and `then`, a message read after it),
    and carries on with the real one."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]
    if then is not None:
        pending.append(then)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
