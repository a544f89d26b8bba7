"""A job's calls to a server that sheds load (429) wait it out instead of failing the job."""

from __future__ import annotations

import threading
from pathlib import Path

from modelyard.runtime._context import with_retry
from modelyard.sdk.client import Client
from tests._servers.admission import limited_server, slot_held


def test_runtime_call_outlasts_a_busy_server_beyond_the_clients_own_patience(
        tmp_path: Path) -> None:
    got: list[object] = []
    # the client gives up on the first 429 (its Retry-After of 1 s is past 0.5 s of patience);
    # the runtime's retry is what carries the call until the server has room again
    with limited_server(tmp_path / "home") as live, \
            Client(live.url, live.token, project="alpha", busy_patience_s=0.5) as c:
        with slot_held(live):
            t = threading.Thread(target=lambda: got.append(
                with_retry(lambda: c.get_project("alpha")["name"], "read the project",
                           patience_s=30)))
            t.start()
            live.until("modelyard_api_requests_shed", 2)  # refused twice already
        t.join(30)
    assert got == ["alpha"]
