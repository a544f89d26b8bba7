"""What a sandboxed run is (Limits, Spec) and how it ended (Outcome, read from the exit file)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `memory_mb` covers every process of the run together (and what it keeps
    in its /tmp and /dev/shm, which are memory too); `processes` counts processes and threads;
    `disk_mb` is the size of the private /tmp (the work dir); `wall_s` None means no limit."""

    memory_mb: int = 1024
    processes: int = 256
    open_files: int = 1024
    wall_s: float | None = None
    disk_mb: int = 1024

    def __post_init__(self) -> None:
        for name in ("memory_mb", "processes", "open_files", "disk_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")
        if self.wall_s is not None and self.wall_s <= 0:
            raise ValueError("Limits.wall_s must be positive (or None for no limit)")


@dataclass(frozen=True)
class Spec:
    """One run of user code.

    `argv` runs with `env` added to an allow-listed base (PATH, locale, TZ, HOME, TMPDIR, ...):
    `env` is the whole of what the caller hands the code, credentials included, so put nothing
    there the code may not hold. The supervisor writes how the run ended to `exit_file`.
    `work_dir`: None gives a private, size-limited tmpfs (the cwd, HOME and TMPDIR: /tmp); a
    host directory instead is bound read-write at its own path and made the cwd (not limited
    by `disk_mb`). `ro_binds` maps host paths to where the code sees them, read-only; they are
    mounted last, so they show even inside a masked path (a dataset under the blob root).
    `gpus`: device indexes the run may use. `name` (a job or step id) picks the run's uid and
    names its cgroup; the exit file's path stands in when it is empty.
    """

    argv: list[str]
    env: dict[str, str]
    limits: Limits
    exit_file: Path
    work_dir: Path | None = None
    ro_binds: dict[str, str] = field(default_factory=dict)
    gpus: list[int] = field(default_factory=list)
    name: str = ""


@dataclass(frozen=True)
class Outcome:
    """How a run ended: the exit code (128 + n for a signal n; None when unknown) and, when a
    limit ended it, a reason naming the limit ("exceeded its memory limit (512 MB)") and the
    limit's field name in Limits (`memory_mb`, `processes`, `disk_mb`, `wall_s`)."""

    code: int | None
    reason: str | None = None
    limit: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0


def read_outcome(exit_file: Path) -> Outcome | None:
    """The outcome the supervisor wrote, or None when there is none (yet).

    A plain integer is read too: the exit files of jobs started before the sandbox existed
    (a server upgraded while such a job runs adopts it)."""
    try:
        text = Path(exit_file).read_text().strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, int) and not isinstance(data, bool):
        return Outcome(code=data)
    if not isinstance(data, dict):
        return None
    code, reason, limit = data.get("code"), data.get("reason"), data.get("limit")
    return Outcome(code=code if isinstance(code, int) else None,
                   reason=reason if isinstance(reason, str) else None,
                   limit=limit if isinstance(limit, str) else None)
