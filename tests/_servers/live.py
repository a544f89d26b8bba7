"""A real modelyard server (uvicorn) in a thread, for tests whose jobs call back over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from modelyard.core.settings import Settings
from modelyard.server.app import create_app
from tests._servers.ports import free_port


@contextmanager
def live_server(settings: Settings) -> Iterator[Settings]:
    """Starts the app on a free port; yields the settings with `port` and `public_url` filled."""
    port = free_port()
    settings = settings.model_copy(update={"port": port, "public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the modelyard server did not start")
        time.sleep(0.05)
    try:
        yield settings
    finally:
        server.should_exit = True
        thread.join(timeout=30)
