"""A modelyard server on a port the test chooses, so a restarted server keeps its address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelyard.core.settings import Settings
from modelyard.server.embedded import embedded_server


@contextmanager
def serve(settings: Settings) -> Iterator[Settings]:
    """The embedded server on `settings.port`, so a restarted one keeps its address (jobs it
    started keep running when the block ends)."""
    with embedded_server(settings, port=settings.port) as live:
        yield live


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
