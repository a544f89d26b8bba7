"""The job's context, read once from the environment the executor set."""

from __future__ import annotations

import json
import os
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


@cache
def client() -> Any:
    from modelyard.sdk.client import Client

    return Client()


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
