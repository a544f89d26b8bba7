"""Client calls of the training component."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from typing import Any

from modelyard.core.errors import NotFound
from modelyard.sdk._http import Transport, poll_until

TERMINAL = ("succeeded", "failed", "cancelled")


class TrainingAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def trainers(self) -> list[dict[str, Any]]:
        return self._t.get(self._t.p("/trainers"))  # type: ignore[no-any-return]

    def submit(self, trainer: str | None = None, dataset_snapshot: str | None = None, *,
               hyperparameters: dict[str, Any] | None = None, code: dict[str, str] | None = None,
               resources: dict[str, Any] | None = None, priority: int = 0,
               timeout_s: int = 3600, max_retries: int = 0, experiment: str | None = None,
               name: str | None = None, model_name: str | None = None) -> dict[str, Any]:
        """Queues a job; raises InvalidArgument / FailedPrecondition when it cannot run.

        `model_name`: the model a built-in trainer registers under (default: its own name)."""
        body: dict[str, Any] = {"trainer": trainer, "dataset_snapshot": dataset_snapshot,
                                "hyperparameters": hyperparameters or {}, "code": code,
                                "priority": priority, "timeout_s": timeout_s,
                                "max_retries": max_retries, "experiment": experiment,
                                "name": name}
        if model_name is not None:
            body["model_name"] = model_name
        if resources:
            body["resources"] = resources
        return self._t.post(self._t.p("/jobs"), json=body)  # type: ignore[no-any-return]

    def upload_code(self, archive: bytes) -> dict[str, Any]:
        """Uploads a .zip/.tar(.gz) code package; submit with code={"digest", "entrypoint"}.

        The digest is the package's identity: a hash of its files' paths and contents (the same
        source zipped again gives the same digest). `download_code` returns the package in its
        canonical form, an uncompressed tar."""
        return self._t.post(self._t.p("/training/code"), content=archive)  # type: ignore[no-any-return]

    def download_code(self, digest: str) -> bytes:
        return self._t.get(self._t.p(f"/training/code/{digest}"))  # type: ignore[no-any-return]

    def get(self, job_id: str) -> dict[str, Any]:
        return self._t.get(self._t.p(f"/jobs/{job_id}"))  # type: ignore[no-any-return]

    def list(self, state: str | list[str] | None = None, limit: int = 50,
             page_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = [state] if isinstance(state, str) else state
        if page_token:
            params["page_token"] = page_token
        return self._t.get(self._t.p("/jobs"), params=params)  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._t.post(self._t.p(f"/jobs/{job_id}/cancel"))  # type: ignore[no-any-return]

    def wait(self, job_id: str, timeout: float = 600.0, poll_s: float = 0.5) -> dict[str, Any]:
        """Polls until the job ends; raises Unavailable (with the last state) on timeout."""
        return poll_until(lambda: self.get(job_id), TERMINAL, timeout, poll_s, f"job {job_id}",
                          lambda job: {"job": job_id, "state": job["state"]})

    def logs(self, job_id: str, follow: bool = False, offset: int = 0) -> Iterator[str]:
        """The job's output as text chunks; with follow, until the job ends."""
        path = self._t.p(f"/jobs/{job_id}/logs")
        params = {"offset": offset, "follow": str(follow).lower()}
        if follow:
            for chunk in self._t.stream("GET", path, params=params, timeout=None):
                yield chunk.decode("utf-8", errors="replace")
            return
        resp = self._t.send("GET", path, params=params)
        yield resp.text

    def set_quota(self, max_cpu: float | None = None, max_gpu: int | None = None,
                  max_jobs: int | None = None) -> dict[str, Any]:
        return self._t.put(self._t.p("/training/quota"), json={  # type: ignore[no-any-return]
            "max_cpu": max_cpu, "max_gpu": max_gpu, "max_jobs": max_jobs})

    # what a running job sends back (used by modelyard.runtime) ------------------------------
    def log_metrics(self, job_id: str, points: builtins.list[dict[str, Any]]) -> None:
        self._t.post(self._t.p(f"/jobs/{job_id}/metrics"), json={"points": points})

    def put_checkpoint(self, job_id: str, data: bytes) -> str:
        return self._t.put(self._t.p(f"/jobs/{job_id}/checkpoint"), content=data)["digest"]  # type: ignore[no-any-return]

    def get_checkpoint(self, job_id: str) -> bytes | None:
        try:
            return self._t.get(self._t.p(f"/jobs/{job_id}/checkpoint"))  # type: ignore[no-any-return]
        except NotFound:
            return None

    def register_model(self, job_id: str, meta: dict[str, Any],
                       files: dict[str, bytes]) -> dict[str, Any]:
        return self._t.post(  # type: ignore[no-any-return]
            self._t.p(f"/jobs/{job_id}/model"), data={"meta": json.dumps(meta)},
            files=[("files", (name, data, "application/octet-stream"))
                   for name, data in files.items()])
