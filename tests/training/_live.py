"""A modelyard server on a port the test chooses, so a restarted server keeps its address."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from modelyard.core.settings import Settings
from modelyard.server.app import create_app


@contextmanager
def serve(settings: Settings) -> Iterator[Settings]:
    """Runs the app on `settings.port` until the block ends (jobs it started keep running)."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port,
                                           log_level="warning", lifespan="on"))
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


def job_pids(job_id: str) -> list[int]:
    """Live processes on this machine whose environment names the job."""
    pids = []
    needle = f"MODELYARD_JOB_ID={job_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids
