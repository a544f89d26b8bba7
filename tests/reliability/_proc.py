"""A modelyard server in its own process, so a test can kill it with SIGKILL and start it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._servers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

# Runs uvicorn on create_app; logs at info level (access log on) so the log can be inspected.
MAIN = """
import sys, uvicorn
from modelyard.core.settings import Settings
from modelyard.server.app import create_app
home, port, background = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
settings = Settings(home=home, port=port, public_url=f"http://127.0.0.1:{port}",
                    background=background)
if len(sys.argv) > 4:
    settings.training.capacity_cpus = float(sys.argv[4])
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="info")
"""


@dataclass
class ServerProcess:
    home: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.token}"})

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, like a power cut of the server process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc.poll() is None


def _wait_ready(server: ServerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"the server exited early:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server was not ready in {timeout_s}s:\n{server.log.read_text()[-3000:]}")


@contextmanager
def server_process(home: Path, port: int | None = None, background: bool = False,
                   capacity_cpus: float | None = None) -> Iterator[ServerProcess]:
    """Starts `uvicorn create_app(...)` on `home` and a free port; kills it when the block ends."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"server-{port}-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", MAIN, str(home), str(port), "1" if background else "0"]
    if capacity_cpus is not None:
        args.append(str(capacity_cpus))
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = ServerProcess(home=home, port=port, proc=proc, log=log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if server.alive():
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
