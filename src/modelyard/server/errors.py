"""The one place errors become HTTP responses."""

from __future__ import annotations

import logging

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

_BY_STATUS = {cls.status: cls for cls in reversed(list(ERROR_CLASSES.values()))}


def error_headers(err: ModelyardError) -> dict[str, str] | None:
    """Retry-After on 429 and 503, from the error's `retry_after_s` (1 s unless it says)."""
    if err.status in (429, 503):
        return {"Retry-After": str(err.details.get("retry_after_s", 1))}
    return None


def error_response(err: ModelyardError) -> JSONResponse:
    """The one error shape, `{"error": {"code", "message", "details"}}`, with its status."""
    return JSONResponse(err.to_dict(), status_code=err.status, headers=error_headers(err))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelyardError)
    async def _modelyard(_: Request, exc: ModelyardError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            problems.append({"field": loc, "problem": str(e.get("msg", ""))[:300]})
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        return error_response(InvalidArgument(f"invalid request: {summary}", {"errors": problems[:50]}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _BY_STATUS.get(exc.status_code, ModelyardError)
        if exc.status_code == 404:
            cls = NotFound
        err = cls(str(exc.detail) if exc.detail else "request failed")
        err.status = exc.status_code  # type: ignore[misc]
        return JSONResponse(err.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ModelyardError("internal error; the server log has the details"))
