"""MLflow's error shape for modelyard's errors, on every MLflow route.

The body carries MLflow's `error_code` and `message` (what its client reads) and modelyard's
own `error` object beside them (what modelyard's tools and tests read).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from modelyard.core.errors import InvalidArgument, ModelyardError

# modelyard code -> (MLflow error code, MLflow's HTTP status for it)
CODES = {
    "invalid_argument": ("INVALID_PARAMETER_VALUE", 400),
    "unauthenticated": ("UNAUTHENTICATED", 401),
    "permission_denied": ("PERMISSION_DENIED", 403),
    "not_found": ("RESOURCE_DOES_NOT_EXIST", 404),
    "already_exists": ("RESOURCE_ALREADY_EXISTS", 400),
    "conflict": ("RESOURCE_CONFLICT", 409),
    "failed_precondition": ("RESOURCE_CONFLICT", 409),
    "payload_too_large": ("INVALID_PARAMETER_VALUE", 413),
    "resource_exhausted": ("RESOURCE_EXHAUSTED", 429),
    "unimplemented": ("NOT_IMPLEMENTED", 501),
    "unavailable": ("TEMPORARILY_UNAVAILABLE", 503),
}


def mlflow_error(err: ModelyardError) -> JSONResponse:
    code, status = CODES.get(err.code, ("INTERNAL_ERROR", 500))
    headers = {"Retry-After": str(err.details.get("retry_after_s", 1))} if status in (429, 503) else None
    return JSONResponse({"error_code": code, "message": err.message, **err.to_dict()},
                        status_code=status, headers=headers)


def _invalid(exc: RequestValidationError) -> InvalidArgument:
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ())),
                 "problem": str(e.get("msg", ""))[:300]} for e in exc.errors()]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return InvalidArgument(f"invalid request: {summary}", {"errors": problems[:50]})


class MlflowRoute(APIRoute):
    """Answers every error of its route, the access check's included, in MLflow's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ModelyardError as e:
                return mlflow_error(e)
            except RequestValidationError as e:
                return mlflow_error(_invalid(e))

        return handle
