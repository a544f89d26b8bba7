"""Client calls of the registry: runs, buffered metric logging, artifacts, models, lineage."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Self
from urllib.parse import quote

from modelyard.sdk._http import FileBody, Transport

log = logging.getLogger("modelyard.sdk")


class MetricLogger:
    """Buffers `log_metric` calls and sends them in batches: when `batch_size` points wait, every
    `flush_interval_s` seconds (a daemon thread), and on `flush()`/`close()`. A failed background
    flush keeps its points and raises from the next call. Thread safe; use as a context manager.
    """

    def __init__(self, api: RegistryAPI, run_id: str, batch_size: int = 1000,
                 flush_interval_s: float = 2.0, project: str | None = None) -> None:
        self._api = api
        self.run_id = run_id
        self.project = project
        self.batch_size = batch_size
        self._buf: list[dict[str, Any]] = []
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if flush_interval_s > 0:
            self._thread = threading.Thread(target=self._loop, args=(flush_interval_s,),
                                            name="modelyard-metric-logger", daemon=True)
            self._thread.start()

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Queue one point; `step` defaults to one past this key's previous step."""
        self._raise_pending()
        if not math.isfinite(value):
            log.warning("metric %r value %r is not finite; not logged", key, value)
            return
        with self._lock:
            if step is None:
                step = self._steps.get(key, -1) + 1
            self._steps[key] = step
            self._buf.append({"key": key, "step": step, "value": float(value), "time": time.time()})
            full = len(self._buf) >= self.batch_size
        if full:
            self.flush()

    @property
    def pending(self) -> int:
        """Points queued and not yet sent (kept after a failed send, for the next flush)."""
        with self._lock:
            return len(self._buf)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def flush(self) -> None:
        """Send every queued point now (in batches of `batch_size`)."""
        self._raise_pending()
        self._send()

    def _send(self) -> None:
        with self._send_lock:
            with self._lock:
                batch, self._buf = self._buf, []
            try:
                for i in range(0, len(batch), self.batch_size):
                    self._api.log_metrics(self.run_id, batch[i : i + self.batch_size], self.project)
            except BaseException:
                with self._lock:
                    self._buf = batch[i:] + self._buf
                raise

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _loop(self, interval: float) -> None:
        while not self._closed.wait(interval):
            if self._buf:
                try:
                    self._send()
                except Exception as e:  # noqa: BLE001 - handed to the caller's next call
                    self._error = e

    def close(self) -> None:
        """Stop the timer and send what is left."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()
        self._raise_pending()
        self._send()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryAPI:
    """`client.registry`: runs, metric series, artifacts, models, aliases and lineage.
    Answers are the server's JSON objects as dicts."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _p(self, path: str, project: str | None) -> str:
        return self._t.p(path, project)

    # runs and metric series
    def create_run(self, experiment: str = "default", params: dict[str, Any] | None = None,
                   tags: dict[str, str] | None = None, job_id: str | None = None,
                   code_hash: str | None = None, dataset_snapshot: str | None = None,
                   project: str | None = None) -> dict[str, Any]:
        body = {"experiment": experiment, "params": params or {}, "tags": tags or {},
                "job_id": job_id, "code_hash": code_hash, "dataset_snapshot": dataset_snapshot}
        return self._t.post(self._p("/runs", project), json=body)  # type: ignore[no-any-return]

    def get_run(self, run_id: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/runs/{quote(run_id, safe='')}", project))  # type: ignore[no-any-return]

    def finish_run(self, run_id: str, status: str = "finished",
                   project: str | None = None) -> dict[str, Any]:
        return self._t.post(self._p(f"/runs/{quote(run_id, safe='')}/finish", project),  # type: ignore[no-any-return]
                            json={"status": status})

    def log_metrics(self, run_id: str, points: list[Any], project: str | None = None) -> int:
        """Send points now: dicts {key, step, value, time} or (key, step, value[, time]) tuples."""
        body = [p if isinstance(p, dict) else
                {"key": p[0], "step": p[1], "value": p[2], "time": p[3] if len(p) > 3 else None}
                for p in points]
        out = self._t.post(self._p(f"/runs/{quote(run_id, safe='')}/metrics", project),
                           json={"points": body})
        return int(out["logged"])

    def metric_logger(self, run_id: str, batch_size: int = 1000, flush_interval_s: float = 2.0,
                      project: str | None = None) -> MetricLogger:
        return MetricLogger(self, run_id, batch_size, flush_interval_s, project)

    def get_metric_series(self, run_id: str, key: str,
                          project: str | None = None) -> list[dict[str, Any]]:
        return self._t.get(self._p(f"/runs/{quote(run_id, safe='')}/metrics", project),  # type: ignore[no-any-return]
                           params={"key": key})

    def search_runs(self, filter: str | list[dict[str, Any]] | None = None,
                    order_by: list[str] | None = None, limit: int = 50,
                    page_token: str | None = None, fields: list[str] | None = None,
                    experiment: str | None = None, project: str | None = None) -> dict[str, Any]:
        """One page: {"runs": [...], "next_page_token": ...}."""
        body = {"filter": filter, "order_by": order_by, "limit": limit, "page_token": page_token,
                "fields": fields, "experiment": experiment}
        return self._t.post(self._p("/runs:search", project), json=body)  # type: ignore[no-any-return]

    def iter_runs(self, filter: str | list[dict[str, Any]] | None = None,
                  order_by: list[str] | None = None, fields: list[str] | None = None,
                  page_size: int = 200, project: str | None = None) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.search_runs(filter, order_by, page_size, token, fields, project=project)
            yield from page["runs"]
            token = page["next_page_token"]
            if not token:
                return

    # artifacts
    def upload_artifact(self, data: str | os.PathLike[str] | bytes | BinaryIO,
                        media_type: str = "application/octet-stream", name: str | None = None,
                        project: str | None = None) -> dict[str, Any]:
        """Streams a file (by path), bytes or a binary stream; returns {digest, size, ...}."""
        path = self._p("/artifacts", project)
        if isinstance(data, (str, os.PathLike)):
            p = Path(data)
            with open(p, "rb") as f:
                return self._t.post(path, params={"name": name or p.name},  # type: ignore[no-any-return]
                                    content=FileBody(f),
                                    headers={"Content-Type": media_type,
                                             "Content-Length": str(p.stat().st_size)})
        content: Any = data if isinstance(data, (bytes, bytearray)) else FileBody(data)
        return self._t.post(path, params={"name": name or ""}, content=content,  # type: ignore[no-any-return]
                            headers={"Content-Type": media_type})

    def artifact_info(self, digest: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/artifacts/{digest}/meta", project))  # type: ignore[no-any-return]

    def list_artifacts(self, limit: int = 100, offset: int = 0,
                       project: str | None = None) -> list[dict[str, Any]]:
        return self._t.get(self._p("/artifacts", project),  # type: ignore[no-any-return]
                           params={"limit": limit, "offset": offset})

    def gc_artifacts(self, retention_s: float = 7 * 86400,
                     project: str | None = None) -> dict[str, Any]:
        """Forget the project's artifacts no model version holds (needs the admin role)."""
        return self._t.post(self._p("/artifacts:gc", project),  # type: ignore[no-any-return]
                            params={"retention_s": retention_s})

    def iter_artifact(self, digest: str, project: str | None = None) -> Iterator[bytes]:
        """The artifact's bytes, streamed in chunks."""
        return self._t.stream("GET", self._p(f"/artifacts/{digest}", project))

    def download_artifact(self, digest: str, dest: str | os.PathLike[str] | None = None,
                          project: str | None = None) -> bytes | Path:
        """The bytes, or with `dest` the path they were streamed to (written whole or not at all)."""
        if dest is None:
            return b"".join(self.iter_artifact(digest, project))
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with open(tmp, "wb") as f:
                f.writelines(self.iter_artifact(digest, project))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    # models, versions, aliases
    def create_model(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self._t.post(self._p("/models", project), json={"name": name})  # type: ignore[no-any-return]

    def list_models(self, project: str | None = None) -> list[dict[str, Any]]:
        return self._t.get(self._p("/models", project))  # type: ignore[no-any-return]

    def get_model(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/models/{name}", project))  # type: ignore[no-any-return]

    def register_version(self, model: str, artifacts: dict[str, str] | None = None,
                         framework: str = "onnx", signature: dict[str, Any] | None = None,
                         preprocessing: dict[str, Any] | None = None,
                         metrics: dict[str, Any] | None = None, run_id: str | None = None,
                         job_id: str | None = None, dataset_snapshot_id: str | None = None,
                         code_hash: str | None = None, params: dict[str, Any] | None = None,
                         project: str | None = None) -> dict[str, Any]:
        body = {"artifacts": artifacts or {}, "framework": framework, "signature": signature or {},
                "preprocessing": preprocessing or {}, "metrics": metrics or {}, "run_id": run_id,
                "job_id": job_id, "dataset_snapshot_id": dataset_snapshot_id,
                "code_hash": code_hash, "params": params}
        return self._t.post(self._p(f"/models/{model}/versions", project), json=body)  # type: ignore[no-any-return]

    def get_version(self, model: str, version: int, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/models/{model}/versions/{int(version)}", project))  # type: ignore[no-any-return]

    def list_versions(self, model: str, project: str | None = None) -> list[dict[str, Any]]:
        return self._t.get(self._p(f"/models/{model}/versions", project))  # type: ignore[no-any-return]

    def resolve(self, ref: str, project: str | None = None) -> dict[str, Any]:
        """`name@3`, `name@production` or `name` (the latest version)."""
        name = ref.partition("@")[0] or "-"
        return self._t.get(self._p(f"/models/{quote(name, safe='')}/resolve", project),  # type: ignore[no-any-return]
                           params={"ref": ref})

    def set_alias(self, model: str, alias: str, version: int,
                  project: str | None = None) -> dict[str, Any]:
        return self._t.put(self._p(f"/models/{model}/aliases/{alias}", project),  # type: ignore[no-any-return]
                           json={"version": version})

    def update_version(self, model: str, version: int, *, description: str | None = None,
                       tags: dict[str, str] | None = None, archived: bool | None = None,
                       project: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in (("description", description), ("tags", tags),
                                  ("archived", archived)) if v is not None}
        return self._t.patch(self._p(f"/models/{model}/versions/{version}", project),  # type: ignore[no-any-return]
                             json=body)

    def delete_version(self, model: str, version: int,
                       project: str | None = None) -> dict[str, Any]:
        return self._t.delete(self._p(f"/models/{model}/versions/{version}", project))  # type: ignore[no-any-return]

    def compare_runs(self, run_ids: list[str], project: str | None = None) -> dict[str, Any]:
        """{runs, params (key -> value per run), differing_params, metrics (key -> summary
        {last, min, max, steps} per run, null where a run lacks the series)}."""
        return self._t.post(self._p("/runs:compare", project), json={"run_ids": run_ids})  # type: ignore[no-any-return]

    def delete_alias(self, model: str, alias: str, project: str | None = None) -> dict[str, Any]:
        return self._t.delete(self._p(f"/models/{model}/aliases/{alias}", project))  # type: ignore[no-any-return]

    def alias_history(self, model: str, alias: str | None = None,
                      project: str | None = None) -> list[dict[str, Any]]:
        params = {"alias": alias} if alias else {}
        return self._t.get(self._p(f"/models/{model}/aliases", project), params=params)  # type: ignore[no-any-return]

    # lineage
    def add_edge(self, src_kind: str, src_id: str, dst_kind: str, dst_id: str,
                 relation: str = "derived_from", project: str | None = None) -> dict[str, Any]:
        body = {"src_kind": src_kind, "src_id": src_id, "dst_kind": dst_kind, "dst_id": dst_id,
                "relation": relation}
        return self._t.post(self._p("/lineage/edges", project), json=body)  # type: ignore[no-any-return]

    def lineage(self, node: str, direction: str = "upstream", depth: int = 10,
                project: str | None = None) -> dict[str, Any]:
        """The graph around `node` (`kind:id`, e.g. `model:digits@3`): {root, nodes, edges}."""
        return self._t.get(self._p("/lineage", project),  # type: ignore[no-any-return]
                           params={"node": node, "direction": direction, "depth": depth})

    def is_referenced(self, node: str, project: str | None = None) -> bool:
        out = self._t.get(self._p("/lineage/referenced", project), params={"node": node})
        return bool(out["referenced"])
