"""The error tree shared by server, SDK and CLI.

    ModelyardError                 500 internal
    ├── InvalidArgument            400 invalid_argument
    ├── Unauthenticated            401 unauthenticated
    ├── PermissionDenied           403 permission_denied
    ├── NotFound                   404 not_found
    ├── AlreadyExists              409 already_exists
    ├── Conflict                   409 conflict
    ├── FailedPrecondition         409 failed_precondition
    ├── PayloadTooLarge            413 payload_too_large
    ├── ResourceExhausted          429 resource_exhausted
    ├── Unimplemented              501 unimplemented
    └── Unavailable                503 unavailable

Each class carries its HTTP status and code; the server maps the base class once, the SDK
turns a response's code back into the same class. Messages say what was wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelyardError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidArgument(ModelyardError):
    status, code = 400, "invalid_argument"


class Unauthenticated(ModelyardError):
    status, code = 401, "unauthenticated"


class PermissionDenied(ModelyardError):
    status, code = 403, "permission_denied"


class NotFound(ModelyardError):
    status, code = 404, "not_found"


class AlreadyExists(ModelyardError):
    status, code = 409, "already_exists"


class Conflict(ModelyardError):
    status, code = 409, "conflict"


class FailedPrecondition(ModelyardError):
    status, code = 409, "failed_precondition"


class PayloadTooLarge(ModelyardError):
    status, code = 413, "payload_too_large"


class ResourceExhausted(ModelyardError):
    status, code = 429, "resource_exhausted"


class Unimplemented(ModelyardError):
    """A call of a foreign protocol (MLflow's) that modelyard does not serve."""

    status, code = 501, "unimplemented"


class Unavailable(ModelyardError):
    status, code = 503, "unavailable"


ERROR_CLASSES: dict[str, type[ModelyardError]] = {
    cls.code: cls
    for cls in (
        ModelyardError,
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        Conflict,
        FailedPrecondition,
        PayloadTooLarge,
        ResourceExhausted,
        Unimplemented,
        Unavailable,
    )
}


def error_from_dict(status: int, body: Any) -> ModelyardError:
    """Rebuild the error a server sent (used by the SDK)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return ModelyardError(f"HTTP {status}: {str(body)[:500]}")
    cls = ERROR_CLASSES.get(str(err.get("code")), ModelyardError)
    return cls(str(err.get("message", "")), err.get("details") or {})
