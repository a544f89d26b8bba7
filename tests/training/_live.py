"""A modelyard server on a port the test chooses, so a restarted server keeps its address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.server.embedded import embedded_server


@contextmanager
def serve(settings: Settings) -> Iterator[Settings]:
    """The embedded server on `settings.port`, so a restarted one keeps its address (jobs it
    started keep running when the block ends)."""
    with embedded_server(settings, port=settings.port) as live:
        yield live


def admin_client(server: Settings) -> Iterator[Client]:
    """The SDK over a live server as its admin, with project `alpha` created (for a
    module-scoped `client` fixture: `yield from admin_client(server)`)."""
    token = server.resolved_admin_token_file.read_text().strip()
    with Client(server.resolved_public_url, token=token, project="alpha") as c:
        c.create_project("alpha")
        yield c


def digits_snapshot(client: Client) -> dict[str, Any]:
    """sklearn's digits imported as dataset `digits`, and a ready snapshot of it."""
    client.datasets.import_builtin("digits", "sklearn:digits")
    return client.datasets.snapshot("digits")


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
