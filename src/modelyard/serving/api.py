"""HTTP routes of serving: deployments and `/predict` per project, and the Open Inference
Protocol (KServe v2) under `/v2`.

v2 rule: `{model}` is a deployment name and the project comes from the `X-Modelyard-Project`
header (required on every `/v2/models/...` route, with a bearer token of a project viewer).
`GET /v2` and `/v2/health/*` need neither, so load balancers can probe them. Errors under `/v2`
use the protocol's shape, `{"error": "<message>", "code", "details"}`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

import modelyard
from modelyard.core.auth import Role
from modelyard.core.errors import InvalidArgument, ModelyardError, Unavailable
from modelyard.metrics import MAX_VERSION
from modelyard.server.deps import Access, Caller, Editor, PlatformDep, Viewer, get_platform
from modelyard.serving import _v2
from modelyard.serving._lineage import prediction_record
from modelyard.serving.models import (
    Deployment,
    DeploymentCreate,
    DeploymentEvent,
    DeploymentUpdate,
    InferRequest,
    InferResponse,
    ModelMetadata,
    PredictionRecord,
    PredictRequest,
    PredictResponse,
    TrafficSet,
)

if TYPE_CHECKING:
    from modelyard.server.platform import Platform

PROJECT_HEADER = "X-Modelyard-Project"
# a model version, bounded where it comes in: every store keeps it as a 32-bit integer, and a
# request's version ends up in its prediction event
QueryVersion = Annotated[int | None, Query(ge=1, le=MAX_VERSION)]
PathVersion = Annotated[int, Path(ge=1, le=MAX_VERSION)]

router = APIRouter(prefix="/api/v1/projects/{project}/deployments", tags=["serving"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_deployment(body: DeploymentCreate, access: Editor, platform: PlatformDep) -> Deployment:
    return platform.serving.create(access.project, body, access.user)


@router.get("")
def list_deployments(access: Viewer, platform: PlatformDep) -> list[Deployment]:
    return platform.serving.list_deployments(access.project)


@router.get("/{name}")
def get_deployment(name: str, access: Viewer, platform: PlatformDep) -> Deployment:
    return platform.serving.get(access.project, name)


@router.patch("/{name}")
def update_deployment(name: str, body: DeploymentUpdate, access: Editor,
                      platform: PlatformDep) -> Deployment:
    return platform.serving.update(access.project, name, body, access.user)


@router.put("/{name}/traffic")
def set_traffic(name: str, body: TrafficSet, access: Editor, platform: PlatformDep) -> Deployment:
    return platform.serving.set_traffic(access.project, name, body.traffic, access.user)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(name: str, access: Editor, platform: PlatformDep) -> None:
    platform.serving.delete(access.project, name, access.user)


@router.get("/{name}/events")
def deployment_events(name: str, access: Viewer, platform: PlatformDep,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DeploymentEvent]:
    return platform.serving.events(access.project, name, limit)


@router.post("/{name}/warm")
def warm(name: str, access: Editor, platform: PlatformDep) -> dict[str, list[int]]:
    """Load the deployment's versions now rather than on their first request."""
    return {"loaded_versions": platform.serving.warm(access.project, name)}


@router.get("/{name}/predictions/{request_id}")
def get_prediction(name: str, request_id: str, access: Viewer,
                   platform: PlatformDep) -> PredictionRecord:
    """The events of one request: outputs, latency, version (404 when this deployment never
    answered it, or it is past the raw retention)."""
    return prediction_record(platform.metrics, access.project, name, request_id)


@router.post("/{name}/predict")
async def predict(name: str, body: PredictRequest, access: Viewer, platform: PlatformDep,
                  version: QueryVersion = None) -> PredictResponse:
    return await platform.serving.predict(access.project, name, body.inputs, version)


# -- Open Inference Protocol ---------------------------------------------------------------------
class _V2Route(APIRoute):
    """Errors in the protocol's own shape, `{"error": "<message>"}` (plus our code and details),
    which Open Inference Protocol clients such as tritonclient read as the error message.
    The status and Retry-After still come from the error class."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ModelyardError as e:
                return _v2.error_response(e)
            except RequestValidationError as e:  # a bad path or query value, in v2's shape
                problems = [f"{'.'.join(map(str, p.get('loc', ())))}: {p.get('msg', '')}"
                            for p in e.errors()[:5]]
                return _v2.error_response(InvalidArgument(
                    f"invalid request: {'; '.join(problems)}"[:1000]))

        return route


v2_router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=_V2Route)


async def _v2_access(  # no I/O: the principal carries its roles
    request: Request,
    principal: Caller,
    project: Annotated[str | None, Header(alias=PROJECT_HEADER)] = None,
) -> Access:
    if not project:
        raise InvalidArgument(
            f"send the project of the model in the {PROJECT_HEADER} header: models under /v2 "
            "are the deployments of that project", {"header": PROJECT_HEADER})
    role = get_platform(request).auth.require(principal, project, Role.viewer)
    return Access(principal, project, role)


V2Viewer = Annotated[Access, Depends(_v2_access)]


@v2_router.get("")
def server_metadata() -> dict[str, object]:
    return {"name": "modelyard", "version": modelyard.__version__, "extensions": []}


@v2_router.get("/health/live")
def live() -> dict[str, bool]:
    return {"live": True}


@v2_router.get("/health/ready")
def ready(platform: PlatformDep) -> dict[str, bool]:
    if not platform.ready:
        raise Unavailable("the server is starting")
    return {"ready": True}


@v2_router.get("/models/{model}")
async def model_metadata(model: str, access: V2Viewer, platform: PlatformDep) -> ModelMetadata:
    return await platform.serving.metadata(access.project, model)


@v2_router.get("/models/{model}/versions/{version}")
async def model_version_metadata(model: str, version: PathVersion, access: V2Viewer,
                                 platform: PlatformDep) -> ModelMetadata:
    return await platform.serving.metadata(access.project, model, version)


@v2_router.get("/models/{model}/ready")
async def model_ready(model: str, access: V2Viewer, platform: PlatformDep) -> Response:
    await platform.serving.ready(access.project, model)
    return Response(status_code=200)


@v2_router.get("/models/{model}/versions/{version}/ready")
async def model_version_ready(model: str, version: PathVersion, access: V2Viewer,
                              platform: PlatformDep) -> Response:
    await platform.serving.ready(access.project, model, version)
    return Response(status_code=200)


_INFER_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": InferRequest.model_json_schema()},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


async def _infer(request: Request, platform: Platform, project: str, model: str,
                 version: int | None) -> Response:
    req, blobs = _v2.parse_request(await request.body(), request.headers.get(_v2.HEADER_LENGTH))
    outcome = await platform.serving.infer(project, model, req, version, blobs)
    body, headers = _v2.render(outcome, _v2.wants_binary(req))
    return Response(body, headers=headers)


@v2_router.post("/models/{model}/infer", openapi_extra=_INFER_BODY, response_model=InferResponse)
async def infer(model: str, request: Request, access: V2Viewer,
                platform: PlatformDep) -> Response:
    """JSON tensors, or the binary tensor data extension (`Inference-Header-Content-Length`)."""
    return await _infer(request, platform, access.project, model, None)


@v2_router.post("/models/{model}/versions/{version}/infer", openapi_extra=_INFER_BODY,
                response_model=InferResponse)
async def infer_version(model: str, version: PathVersion, request: Request, access: V2Viewer,
                        platform: PlatformDep) -> Response:
    return await _infer(request, platform, access.project, model, version)
