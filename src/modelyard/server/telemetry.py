"""Prometheus families of the API itself: requests by route template and status, and latency.

Labelled by the route's template (`/api/v1/projects/{project}/jobs/{job_id}`), never the raw
path, so ids and names do not grow the label space; a path no route matched is `unmatched`.
The /predict fast path (serving/fastpath.py) answers before this layer, so it counts the
requests it answers in these same families itself (`api_families(registry).observe`).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiFamilies:
    """The two families, once per registry, for every layer that answers requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("modelyard_api_requests", "API requests answered",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("modelyard_api_request_seconds",
                                 "API request latency to the start of the response",
                                 ["method", "route"], buckets=BUCKETS, registry=registry)
        # label children by label set: a `labels()` lookup costs as much as the update
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request (for a layer that answers without the router)."""
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[(method, route)] = self.latency.labels(method, route)
        timed.observe(seconds)
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._counted[(method, route, status)] = \
                self.requests.labels(method, route, str(status))
        counted.inc()


_FAMILIES: weakref.WeakKeyDictionary[CollectorRegistry, ApiFamilies] = \
    weakref.WeakKeyDictionary()
_FAMILIES_LOCK = threading.Lock()


def api_families(registry: CollectorRegistry) -> ApiFamilies:
    with _FAMILIES_LOCK:
        families = _FAMILIES.get(registry)
        if families is None:
            families = _FAMILIES[registry] = ApiFamilies(registry)
        return families


class RequestMetrics:
    """ASGI middleware counting each HTTP request once its response has started."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        families = api_families(registry)
        self.requests, self.latency = families.requests, families.latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def timed(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                self.latency.labels(scope["method"], _route(scope)).observe(
                    time.perf_counter() - start)
            await send(msg)

        try:
            await self.app(scope, receive, timed)
        finally:
            self.requests.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")  # set by the router on the (shared) scope when a route matched
    return str(getattr(route, "path", None) or "unmatched")
