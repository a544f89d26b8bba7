"""The one place errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard.core.errors import (
    ERROR_CLASSES,
    InvalidArgument,
    ModelyardError,
    NotFound,
)

log = logging.getLogger("modelyard.server")
V2_ROUTES = ("GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}], "
             ".../ready; POST .../infer")

_BY_STATUS = {cls.status: cls for cls in reversed(list(ERROR_CLASSES.values()))}


def error_headers(err: ModelyardError) -> dict[str, str] | None:
    """Retry-After on 429 and 503, from the error's `retry_after_s` (1 s unless it says)."""
    if err.status in (429, 503):
        return {"Retry-After": str(err.details.get("retry_after_s", 1))}
    return None


def is_v2(path: str) -> bool:
    """Under the Open Inference Protocol's prefix, where errors take that protocol's shape."""
    return path == "/v2" or path.startswith("/v2/")


def error_body(err: ModelyardError, path: str = "") -> dict[str, Any]:
    """`{"error": {"code", "message", "details"}}`; under /v2 the protocol's `{"error":
    "<message>", "code", "details"}`, since its clients (tritonclient) read `error` as the
    message and fail on an object there, whichever route, middleware or handler answers."""
    if is_v2(path):
        return {"error": err.message, "code": err.code, "details": err.details}
    return err.to_dict()


def error_response(err: ModelyardError, path: str = "") -> JSONResponse:
    """The error's body for `path` (see `error_body`), with its status and Retry-After."""
    return JSONResponse(error_body(err, path), status_code=err.status, headers=error_headers(err))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def _modelyard(request: Request, exc: ModelyardError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            problems.append({"field": loc, "problem": str(e.get("msg", ""))[:300]})
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        return error_response(InvalidArgument(f"invalid request: {summary}", {"errors": problems[:50]}),
                              request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _BY_STATUS.get(exc.status_code, ModelyardError)
        if exc.status_code == 404:
            cls = NotFound
        path = request.url.path
        message = str(exc.detail) if exc.detail else "request failed"
        if is_v2(path) and exc.status_code in (404, 405):
            # Triton's own extensions (repository index, model config, statistics, load) land
            # here: say what this server speaks rather than a bare "Not Found".
            message = (f"{request.method} {path[:200]} is not served here: modelyard speaks the "
                       f"Open Inference Protocol ({V2_ROUTES}); Triton's repository, "
                       "configuration, statistics and load extensions are not part of it")
        err = cls(message)
        err.status = exc.status_code  # type: ignore[misc]
        return JSONResponse(error_body(err, path), status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ModelyardError("internal error; the server log has the details"),
                              request.url.path)
