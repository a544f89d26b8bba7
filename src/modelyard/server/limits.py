"""A request-body size limit enforced before any route reads the body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.core.errors import PayloadTooLarge


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
                await _reject(send, self.max_bytes)
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
            await _reject(send, limit)


async def _reject(send: Send, limit: int) -> None:
    import json

    err = PayloadTooLarge(
        f"request body is larger than the limit of {limit} bytes; upload in parts or raise "
        "MODELYARD_API__MAX_BODY_BYTES"
    )
    body = json.dumps(err.to_dict()).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
