"""Streamed request bodies: written to a file as they arrive, never held whole, never partial."""

from __future__ import annotations

from typing import BinaryIO

from fastapi import Request
from starlette.requests import ClientDisconnect

from modelyard.core.errors import InvalidArgument


async def receive_into(request: Request, dest: BinaryIO) -> int:
    """Write the request body into `dest`; returns its size.

    Raises InvalidArgument when the body is cut short (a dropped connection, or fewer bytes than
    its Content-Length), so the caller stores nothing of it.
    """
    declared = request.headers.get("content-length")
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            dest.write(chunk)
    except (ClientDisconnect, OSError):  # the client went away or its stream broke
        raise InvalidArgument("the upload was interrupted; nothing was stored, send it again") from None
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise InvalidArgument(f"the upload ended after {size} of {declared} bytes; nothing was "
                              "stored, send it again")
    return size
