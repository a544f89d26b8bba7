"""An S3 endpoint from `moto[server]` on 127.0.0.1 (the only S3 server available here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests._servers.ports import free_port, listening


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    with listening([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                   port):
        yield f"http://127.0.0.1:{port}"
