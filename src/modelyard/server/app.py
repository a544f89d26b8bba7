"""`create_app()`: one FastAPI app with every component's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

import modelyard
from modelyard.core.settings import Settings
from modelyard.server.admission import AdmissionLimit
from modelyard.server.errors import install_error_handlers
from modelyard.server.limits import BodyLimit, JsonGuard, bounded_integers
from modelyard.server.platform import Platform
from modelyard.server.telemetry import RequestMetrics
from modelyard.serving.fastpath import PredictFastPath

# Every router of the platform, as (module, attribute): the one table to extend.
ROUTERS = (
    ("modelyard.server.health", "router"),
    ("modelyard.server.api", "router"),
    ("modelyard.datasets.api", "router"),
    ("modelyard.training.api", "router"),
    ("modelyard.hpo.api", "router"),
    ("modelyard.registry.api", "router"),
    ("modelyard.mlflow_compat.api", "router"),
    ("modelyard.mlflow_compat.api", "fallback_router"),  # after its router: the rest of MLflow's API
    ("modelyard.serving.api", "router"),
    ("modelyard.serving.api", "v2_router"),
    ("modelyard.metrics.api", "router"),
    ("modelyard.workflows.api", "router"),
    ("modelyard.ui.api", "router"),
    ("modelyard.server.guide", "router"),
)

# What a serving replica (`modelyard serve`, settings.role == "serving") exposes.
SERVING_ROUTERS = (
    ("modelyard.server.health", "router"),
    ("modelyard.serving.api", "router"),
    ("modelyard.serving.api", "v2_router"),
)


class _App(FastAPI):
    """FastAPI with the /predict fast path (serving/fastpath.py) in front of all of it: the
    fast path answers its requests, errors included, itself, and each layer it skips costs
    a few µs per request. That includes FastAPI's native OpenTelemetry check (it reads the
    environment on every request): requests the fast path answers are counted on /metrics but
    not traced; everything it hands on goes through FastAPI whole."""

    fast_path: PredictFastPath | None = None  # in front of the app (None: not installed)

    def serve_predictions_first(self, platform: Platform, max_bytes: int) -> None:
        async def whole_app(scope: Scope, receive: Receive, send: Send) -> None:
            await FastAPI.__call__(self, scope, receive, send)

        self.fast_path = PredictFastPath(whole_app, platform, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await self.fast_path(scope, receive, send)


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    settings = settings or (platform.settings if platform else Settings())
    platform = platform or Platform(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        platform.start()
        try:
            yield
        finally:
            platform.stop()

    app = _App(
        title="modelyard",
        version=modelyard.__version__,
        description="Datasets, training, tuning, registry, serving, workflows and monitoring.",
        lifespan=lifespan,
        dependencies=[Depends(bounded_integers)],  # every route: integers within 64 bits
    )
    app.state.platform = platform
    install_error_handlers(app)
    for module, attr in SERVING_ROUTERS if settings.role == "serving" else ROUTERS:
        router = getattr(import_module(module), attr, None)
        if router is not None:
            app.include_router(router)
    app.add_middleware(JsonGuard)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=platform.prometheus)
    # before any body is read: a request past the limit costs next to nothing
    app.add_middleware(AdmissionLimit, max_in_flight=settings.api.max_in_flight,
                       queue_wait_s=settings.api.queue_wait_s,
                       retry_after_s=settings.api.retry_after_s, registry=platform.prometheus)
    # outermost: answers the common /predict request before routing (see serving/fastpath.py)
    app.serve_predictions_first(platform, settings.api.max_body_bytes)
    return app
