"""Tokens are never written down: not in the server's log, not in job logs, not in the database.

A real server process runs a job that uses its scoped token to report metrics; requests carry
the admin's, a user's and a wrong token. Then every byte the server wrote (its stdout/stderr
and every file under the data dir, database included, but the 0600 admin-token file whose job
is to hold one) is searched for each token and for anything shaped like one.
"""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.reliability._proc import server_process
from tests.reliability.conftest import Summary

pytestmark = pytest.mark.integration

P = "/api/v1/projects/alpha"
TOKEN_SHAPE = re.compile(rb"myd_[A-Za-z0-9_\-]{16,}")

TRAIN = '''
import os, socket, sys
from modelyard import runtime
from modelyard.runtime._context import credentials  # what the ticket was exchanged for
ctx = runtime.context()
# To the test's listener on loopback: the job's sandbox writes no file the test could read.
with socket.create_connection(("127.0.0.1", ctx.hyperparameters["token_port"])) as s:
    s.sendall(credentials().token.encode())
print("training with a token it must not print", flush=True)
print("stderr line", file=sys.stderr, flush=True)
runtime.log_metrics(0, loss=1.0)
runtime.log_metrics(1, loss=0.5)
'''


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", text)
    return buf.getvalue()


def _receive(listener: socket.socket) -> bytes:
    conn, _ = listener.accept()
    with conn:
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return data


def test_no_token_is_written_to_logs_or_disk(tmp_path: Path, summary: Summary) -> None:
    home = tmp_path / "home"
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    threading.Thread(target=lambda: received.append(_receive(listener)), daemon=True).start()
    with server_process(home, background=True, capacity_cpus=1) as server:
        admin = server.token
        with server.client() as c:
            assert c.post("/api/v1/projects", json={"name": "alpha"}).status_code == 201
            user_token = c.post("/api/v1/users", json={"name": "vic"}).json()["token"]
            assert c.put(f"{P}/members", json={"user": "vic", "role": "editor"}).status_code == 200
            made = c.post("/api/v1/tokens", json={"name": "ci"}).json()["token"]
            wrong = "myd_" + "W" * 40
            assert c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {wrong}"}
                         ).status_code == 401
            assert c.get("/api/v1/whoami", headers={"Authorization": f"Bearer {user_token}"}
                         ).status_code == 200
            assert c.get("/api/v1/whoami", headers={"Authorization": f"Token {made}"}
                         ).status_code == 401  # a malformed header that still carries one
            code = c.post(f"{P}/training/code", content=_zip(TRAIN)).json()
            job = c.post(f"{P}/jobs", json={
                "code": {"digest": code["digest"], "entrypoint": "train.py"},
                "hyperparameters": {"token_port": listener.getsockname()[1]}}).json()
            deadline = time.monotonic() + 90
            while (state := c.get(f"{P}/jobs/{job['id']}").json())["state"] not in (
                    "succeeded", "failed", "cancelled"):
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            logs = c.get(f"{P}/jobs/{job['id']}/logs").text
        assert state["state"] == "succeeded", logs
        assert "training with a token it must not print" in logs
    listener.close()
    job_token = received[0].decode().strip()
    assert job_token.startswith("myd_")

    secrets = {admin, user_token, made, wrong, job_token}
    files = [server.log] + [p for p in home.rglob("*")
                            if p.is_file() and p.name != "admin-token"]
    found = []
    for path in files:
        data = path.read_bytes()
        found += [(str(path), "a known token") for s in secrets if s.encode() in data]
        found += [(str(path), m.group()[:12].decode()) for m in TOKEN_SHAPE.finditer(data)]
    assert found == []
    summary.add("hostile", token_leak_files_scanned=len(files), tokens_checked=len(secrets),
                tokens_found_in_logs=len(found))
