"""The job's context, read once from the environment the executor set."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from modelyard.core.errors import ResourceExhausted, Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Who and where this process is within its job."""

    job_id: str
    project: str
    run_id: str
    attempt: int
    rank: int
    world_size: int
    local_rank: int
    dataset_snapshot: str
    code_hash: str
    trainer: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@cache
def context() -> Context:
    env = os.environ
    return Context(
        job_id=env.get("MODELYARD_JOB_ID", "local"),
        project=env.get("MODELYARD_PROJECT", ""),
        run_id=env.get("MODELYARD_RUN_ID", ""),
        attempt=int(env.get("MODELYARD_ATTEMPT", "0")),
        rank=int(env.get("RANK", "0")),
        world_size=int(env.get("WORLD_SIZE", "1")),
        local_rank=int(env.get("LOCAL_RANK", "0")),
        dataset_snapshot=env.get("MODELYARD_DATASET_SNAPSHOT", ""),
        code_hash=env.get("MODELYARD_CODE_HASH", ""),
        trainer=env.get("MODELYARD_TRAINER", ""),
        hyperparameters=json.loads(env.get("MODELYARD_HYPERPARAMETERS") or "{}"),
    )


@dataclass(frozen=True)
class Credentials:
    """The job process's token and the blob store's options: held in memory only."""

    token: str
    storage_options: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a secret by accident
        return "Credentials(token=***, storage_options=***)"


_credentials_lock = threading.Lock()
_credentials: list[Credentials | None] = []


def credentials() -> Credentials | None:
    """This process's credentials, got by exchanging `MODELYARD_TICKET` (one call, at first
    use; each use of the ticket counts, so it is exchanged once per process); None outside a
    job (the SDK then reads MODELYARD_TOKEN or the admin-token file as usual)."""
    with _credentials_lock:
        if not _credentials:
            _credentials.append(_redeem())
        return _credentials[0]


def _redeem() -> Credentials | None:
    import httpx

    from modelyard.core.errors import error_from_dict

    env = os.environ
    ticket = env.get("MODELYARD_TICKET")
    if not ticket:
        return None
    url = env.get("MODELYARD_URL", "http://127.0.0.1:8600").rstrip("/")
    path = (f"/api/v1/projects/{env.get('MODELYARD_PROJECT', '')}/jobs/"
            f"{env.get('MODELYARD_JOB_ID', '')}/credentials")

    def call() -> Credentials:
        try:
            r = httpx.post(url + path, headers={"Authorization": f"Bearer {ticket}"}, timeout=30)
        except httpx.TransportError as e:
            raise Unavailable(f"cannot reach the modelyard server at {url}: {e}") from e
        if r.status_code != 200:
            try:
                body = r.json()
            except ValueError:
                body = r.text
            raise error_from_dict(r.status_code, body)
        body = r.json()
        return Credentials(str(body["token"]), dict(body.get("storage_options") or {}))

    # Only a connection that never reached the server is retried: a refused ticket is final.
    return with_retry(call, "exchange the launch ticket for credentials")


@cache
def client() -> Any:
    from modelyard.sdk.client import Client

    creds = credentials()
    return Client(token=creds.token) if creds else Client()


def with_retry(call: Callable[[], T], what: str, patience_s: float = 60.0) -> T:
    """Calls the server, waiting out short outages (a restarting server) and a server too busy
    to take the call (429, after the client's own waits) up to `patience_s`."""
    deadline = time.monotonic() + patience_s
    delay = 0.2
    while True:
        try:
            return call()
        except (Unavailable, ResourceExhausted) as e:
            if time.monotonic() > deadline:
                raise
            why = "busy" if isinstance(e, ResourceExhausted) else "unreachable"
            print(f"modelyard: server {why} while trying to {what}; retrying", flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
