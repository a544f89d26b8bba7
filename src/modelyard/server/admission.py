"""Admission control: a bounded number of API requests in flight per process; past it, 429.

Without it, a server offered more than it can answer queues everything and answers everything
late (at twice its capacity, seconds late and growing). With it, a request that finds
`max_in_flight` requests already being answered waits up to `queue_wait_s` for one of them to
finish, then gets 429 with Retry-After in the one error shape, no route having run: the
admitted ones keep a bounded latency and the shed ones know to come back.

A request holds its slot until its response starts: a streamed answer (a followed job log, an
artifact download) does not keep others out while it trickles. Never limited: health and
metrics (an orchestrator must see a busy server as alive and ready) and serving's prediction
routes, which have their own backpressure (a bounded batch queue, serving/batcher.py); nor
long polls (`?wait_s=`, a pipeline run's end), which wait on an event and not on the CPU.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.errors import ResourceExhausted
from modelyard.server.errors import error_response

_EXEMPT = re.compile(r"^/(?:healthz|readyz|metrics)$|^/v2(?:/|$)"
                     r"|^/api/v1/projects/[^/]+/deployments/[^/]+/predict$")
_LONG_POLL = re.compile(rb"(?:^|&)wait_s=(?!0*\.?0*(?:&|$))")


def exempt(path: str, query: bytes = b"") -> bool:
    """Whether a request is answered without taking an admission slot."""
    return _EXEMPT.match(path) is not None or _LONG_POLL.search(query) is not None


class Slots:
    """`limit` slots, FIFO waiters with a deadline. One per process, used on its event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, wait_s: float) -> bool:
        """Takes a slot, waiting up to `wait_s` for one; False when none came free in time."""
        if self.taken < self.limit and not self._waiters:
            self.taken += 1
            return True
        if wait_s <= 0:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except TimeoutError:
            pass
        except asyncio.CancelledError:  # the client left, or the server stops
            if not self._give_up(fut):
                self.release()
            raise
        return fut.done() or not self._give_up(fut)

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on: `taken` stays as it is
                return
        self.taken -= 1

    def _give_up(self, fut: asyncio.Future[None]) -> bool:
        """Stops waiting; False when release() handed `fut` its slot first (it is held now)."""
        if fut.done():
            return False
        fut.cancel()
        self._waiters.remove(fut)
        return True


class AdmissionLimit:
    """ASGI middleware: the limit of this module's docstring, counted in Prometheus."""

    def __init__(self, app: ASGIApp, max_in_flight: int, queue_wait_s: float,
                 retry_after_s: int, registry: CollectorRegistry) -> None:
        self.app = app
        self.slots = Slots(max_in_flight)
        self.queue_wait_s = queue_wait_s
        self.retry_after_s = retry_after_s
        self.shed = Counter("modelyard_api_requests_shed",
                            "API requests answered 429 because max_in_flight were in flight",
                            registry=registry)
        Gauge("modelyard_api_requests_in_flight", "API requests being answered now "
              "(admission-controlled ones)", registry=registry).set_function(
            lambda: self.slots.taken)
        Gauge("modelyard_api_requests_waiting", "API requests waiting for an admission slot",
              registry=registry).set_function(lambda: self.slots.waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.slots.limit <= 0 or \
                exempt(scope["path"], scope["query_string"]):
            await self.app(scope, receive, send)
            return
        if not await self.slots.acquire(self.queue_wait_s):
            self.shed.inc()
            await self._reject(scope, receive, send)
            return
        held = True

        def free() -> None:
            nonlocal held
            if held:
                held = False
                self.slots.release()

        async def releasing(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                free()
            await send(msg)

        try:
            await self.app(scope, receive, releasing)
        finally:
            free()

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = ResourceExhausted(
            f"the server is answering {self.slots.limit} requests already; retry after "
            f"{self.retry_after_s} s (the limit is MODELYARD_API__MAX_IN_FLIGHT)",
            {"retry_after_s": self.retry_after_s, "max_in_flight": self.slots.limit})
        # The body is read and dropped first: HTTP/1.1 clients (httpx among them) send the
        # whole request before they read the answer, and a connection closed under their
        # upload would reach them as a dropped connection instead of this 429.
        while True:
            msg = await receive()
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                break
        await error_response(err, scope.get("path", ""))(scope, receive, send)
