"""A real server (uvicorn in a thread) with an admission limit of 1, and a request that holds
the slot: for tests of load shedding (tests/server/test_admission.py, tests/runtime)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelyard.core.settings import ApiSettings, Settings
from modelyard.server.embedded import embedded_server

P = "/api/v1/projects/alpha"


@dataclass
class Live:
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    def gauge(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            if family.name == name:
                return float(family.samples[0].value)
        raise AssertionError(f"{name} not exposed")

    def until(self, name: str, value: float, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.gauge(name) != value:
            assert time.monotonic() < deadline, f"{name} never reached {value}"
            time.sleep(0.02)


@contextmanager
def limited_server(home: Path, queue_wait_s: float = 0.05) -> Iterator[Live]:
    """A server taking one request at a time, with project `alpha`."""
    settings = Settings(home=home, background=False,
                        api=ApiSettings(max_in_flight=1, queue_wait_s=queue_wait_s))
    with embedded_server(settings) as s:
        server = Live(s.resolved_public_url, s.resolved_admin_token_file.read_text().strip())
        with server.client() as c:
            assert c.post("/api/v1/projects", json={"name": "alpha"}).status_code == 201
        yield server


@contextmanager
def slot_held(live: Live) -> Iterator[list[int]]:
    """An artifact upload whose body trickles until the block ends: it holds the one slot."""
    release, answer = threading.Event(), []

    def body() -> Iterator[bytes]:
        yield b"first part"
        release.wait(30)
        yield b", last part"

    def upload() -> None:
        with live.client() as c:
            answer.append(c.post(f"{P}/artifacts", params={"name": "slow"},
                                 content=body()).status_code)

    t = threading.Thread(target=upload)
    t.start()
    live.until("modelyard_api_requests_in_flight", 1)
    try:
        yield answer
    finally:
        release.set()
        t.join(30)
