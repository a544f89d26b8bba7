"""Client calls of the workflow manager (`client.workflows`)."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelyard.core.errors import InvalidArgument
from modelyard.sdk._http import Transport

TERMINAL = ("succeeded", "failed", "cancelled")
Json = dict[str, Any]
JsonList = list[Json]
Names = list[str]


class WorkflowsAPI:
    """Register pipelines, start and watch runs, cancel them, schedule them."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _p(self, path: str, project: str | None) -> str:
        return self._t.p(f"/pipelines{path}", project)

    # pipelines
    def register(self, source: str, name: str | None = None, project: str | None = None) -> Json:
        """Register a built-in pipeline (`digits-lifecycle`, `continuous-training`); your own
        pipelines are code packages: `register_package`."""
        return self._t.post(self._p("", project), json={"source": source, "name": name})  # type: ignore[no-any-return]

    def register_package(self, package: str | Path | bytes, entry: str = "pipeline:pipeline",
                         name: str | None = None, project: str | None = None) -> Json:
        """Register (or update) a pipeline from its source: a folder (zipped here), a .zip or
        .tar.gz file, or the archive's bytes. `entry` is `module:attr` inside it, naming a
        `Pipeline` or a function returning one. The server loads it in its sandbox; an edited
        package is a new version, the same files packed again are the same one."""
        data = package if isinstance(package, bytes) else _archive(Path(package))
        params = {"entry": entry, **({"name": name} if name else {})}
        return self._t.post(self._p("/packages", project), content=data, params=params,  # type: ignore[no-any-return]
                            headers={"content-type": "application/octet-stream"})

    def list(self, project: str | None = None) -> JsonList:
        return self._t.get(self._p("", project))  # type: ignore[no-any-return]

    def get(self, name: str, project: str | None = None) -> Json:
        return self._t.get(self._p(f"/{quote(name, safe='')}", project))  # type: ignore[no-any-return]

    def versions(self, name: str, project: str | None = None) -> JsonList:
        """Versions oldest first: `hash`, `package_digest`, `created_at`, `current`."""
        return self._t.get(self._p(f"/{quote(name, safe='')}/versions", project))  # type: ignore[no-any-return]

    # runs
    def run(self, name: str, params: dict[str, Any] | None = None, *, wait: bool = False,
            timeout_s: float = 3600, version: str | None = None, no_cache: bool = False,
            project: str | None = None) -> Json:
        """Start a run; with `wait=True` return it once it ended (or when `timeout_s` passed).
        `version` (a hash or a prefix of 8+ characters) runs an older version; `no_cache`
        runs every step afresh."""
        body: Json = {"params": params or {}, "no_cache": no_cache}
        if version:
            body["version"] = version
        run: Json = self._t.post(self._p(f"/{quote(name, safe='')}/runs", project), json=body)
        return self.wait(run["id"], timeout_s, project) if wait else run

    def wait(self, run_id: str, timeout_s: float = 3600, project: str | None = None) -> Json:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            run = self.get_run(run_id, wait_s=max(0.0, min(30.0, left)), project=project)
            if run["state"] in TERMINAL or time.monotonic() >= deadline:
                return run

    def get_run(self, run_id: str, wait_s: float = 0, project: str | None = None) -> Json:
        params = {"wait_s": wait_s} if wait_s else None
        return self._t.get(self._p(f"/runs/{quote(run_id, safe='')}", project), params=params)  # type: ignore[no-any-return]

    def list_runs(self, pipeline: str | None = None, limit: int = 50,
                  project: str | None = None) -> JsonList:
        params: dict[str, Any] = {"limit": limit}
        if pipeline:
            params["pipeline"] = pipeline
        return self._t.get(self._p("/runs", project), params=params)  # type: ignore[no-any-return]

    def cancel(self, run_id: str, project: str | None = None) -> Json:
        return self._t.post(self._p(f"/runs/{quote(run_id, safe='')}/cancel", project))  # type: ignore[no-any-return]

    # schedules and event triggers
    def schedule(self, name: str, cron: str | None = None, *, event: str | None = None,
                 match: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                 enabled: bool = True, no_cache: bool = False,
                 project: str | None = None) -> Json:
        """A cron schedule (`cron="0 3 * * *"`) or an event trigger (`event="dataset.commit"`,
        `match={"dataset": "digits"}`) that starts runs of the pipeline; with `no_cache` its
        runs take no step result from the cache (retraining on an alert, say)."""
        body = {"cron": cron, "event": event, "match": match or {}, "params": params or {},
                "enabled": enabled, "no_cache": no_cache}
        return self._t.post(self._p(f"/{quote(name, safe='')}/schedules", project), json=body)  # type: ignore[no-any-return]

    def list_schedules(self, name: str | None = None, project: str | None = None) -> JsonList:
        path = f"/{quote(name, safe='')}/schedules" if name else "/schedules"
        return self._t.get(self._p(path, project))  # type: ignore[no-any-return]

    def update_schedule(self, schedule_id: str, project: str | None = None,
                        **fields: Any) -> Json:
        return self._t.patch(self._p(f"/schedules/{quote(schedule_id, safe='')}", project),
                             json=fields)  # type: ignore[no-any-return]

    def delete_schedule(self, schedule_id: str, project: str | None = None) -> None:
        self._t.delete(self._p(f"/schedules/{quote(schedule_id, safe='')}", project))


SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", ".mypy_cache", ".pytest_cache",
             ".ruff_cache"}


def _archive(path: Path) -> bytes:
    """A folder zipped (its regular files; caches and VCS folders left out), or an archive
    file's bytes. The server identifies the package by its files, not by these bytes."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise InvalidArgument(f"{path} is neither a folder nor an archive file")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for f in sorted(files):
                full = Path(root, f)
                if full.suffix == ".pyc":
                    continue
                if full.is_symlink() or not full.is_file():
                    raise InvalidArgument(f"{full} is not a regular file (a link?); a package "
                                          "holds regular files only: copy the file in instead")
                z.write(full, full.relative_to(path).as_posix())
    return out.getvalue()
