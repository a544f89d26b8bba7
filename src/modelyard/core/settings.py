"""One typed settings object for the whole platform.

Built once (by `create_app()` or the CLI entry point) and handed down; nothing reads the
environment at import time. Tests construct `Settings(...)` directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from modelyard.core.codepkg import PackageLimits


def _default_home() -> Path:
    return Path(os.environ.get("MODELYARD_HOME", Path.home() / ".modelyard"))


class BlobSettings(BaseModel):
    """Where blobs, artifacts and datasets live: `local` (under the data dir) or `s3`."""

    backend: str = "local"
    root: Path | None = None  # local root; default <home>/blobs
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None


class TrainingSettings(BaseModel):
    executor: str = "local"  # local | ray
    ray_address: str | None = None
    capacity_cpus: float | None = None  # default: the machine's cores
    capacity_gpus: int | None = None
    capacity_memory_mb: int | None = None
    poll_interval_s: float = 0.2
    backfill_window_s: float = Field(
        default=300.0, ge=0,
        description="how long (seconds) a queued job that does not fit lets smaller jobs of "
        "its own priority start ahead of it; after that, what it needs is held for it. Jobs of "
        "lower priority never take what a waiting higher-priority job needs")


class SecuritySettings(BaseModel):
    """How user code is confined (see docs/security.md).

    `sandbox`: `auto` (the default) runs user code under bubblewrap when it works on this
    machine; without it, user code still runs while the platform has a single user (the
    embedded default, `make demo`), with a warning at start and in /readyz, and is refused once
    a second user exists. `required` refuses user code unless bubblewrap works. `off` runs user
    code unconfined, for a trusted single user only: a warning at start and in /readyz.
    `sandbox_uid_base`: a server running as root runs each job as an unprivileged uid from
    `sandbox_uid_base` up (one per job, so per-job process limits hold and the data dir, 0700,
    stays out of reach even if a mount were to leak).
    """

    sandbox: Literal["auto", "required", "off"] = "auto"
    sandbox_uid_base: int = Field(default=200_000, ge=1000)
    # Code packages (trainer, pipeline, inference code; core/codepkg.py): an upload past one
    # of these is refused with 413. Code is small; data and weights have their own homes.
    package_max_members: int = Field(default=10_000, ge=1)
    package_max_unpacked_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    package_max_ratio: float = Field(default=100, ge=1)

    def package_limits(self) -> PackageLimits:
        from modelyard.core.codepkg import PackageLimits

        return PackageLimits(max_members=self.package_max_members,
                             max_total_bytes=self.package_max_unpacked_bytes,
                             max_ratio=self.package_max_ratio)


class ServingSettings(BaseModel):
    memory_budget_mb: int = 2048
    max_batch_size: int = 32
    max_batch_delay_ms: float = 2.0
    max_queue: int = 256
    request_timeout_s: float = 10.0
    # Batches of one model this process runs at once (None: one per core). More than its
    # share of the cores only splits them between small batches that would have been one big
    # one; `modelyard serve --workers N` sets it to cores / N.
    batch_workers: int | None = Field(default=None, ge=1, le=64)
    # Tune Python's garbage collector for serving (`ServingService.start`: the long-lived heap
    # frozen, a larger young generation). Process-wide, so only for a process that is nothing
    # but a server: `modelyard serve` and `modelyard server` turn it on; an embedded server
    # (`modelyard.server.embedded`, a notebook, the demo) leaves its host's collector alone.
    tune_gc: bool = False


class MetricsSettings(BaseModel):
    """The prediction-event store (modelyard.metrics): engine, place, rollups and retention.

    `embedded` keeps events and their 1-minute/1-hour rollups in a DuckDB file owned by this
    server (`path`, default <home>/metrics/events.duckdb); `database` keeps raw events in the
    metadata database (no rollups), as replicas do. Retention is in days per resolution.
    """

    store: Literal["embedded", "database"] = "embedded"
    path: Path | None = None
    raw_retention_days: float = Field(default=7, gt=0)
    rollup_1m_retention_days: float = Field(default=30, gt=0)
    rollup_1h_retention_days: float = Field(default=365, gt=0)
    maintenance_interval_s: float = Field(default=10, gt=0)  # rollup + prune pass


# Measured by bench/admission_bench.py (bench/results/api_admission.json) on 2 cores: one
# process reaches its best rate on the mixed API workload with 1 to 16 requests in flight
# (depending on the machine's load), more only queue. 16, the most seen, should not cost
# throughput; at twice capacity it halved the admitted requests' median latency against no
# limit (~180 ms vs ~450 ms at load average 6-10), where limits from 4 to 32 did alike.
MAX_IN_FLIGHT = 16
QUEUE_WAIT_S = 0.1


class ApiSettings(BaseModel):
    """Limits of the API. `max_in_flight`: requests this process answers at once (health,
    /metrics and serving's predictions aside); past it a request waits up to `queue_wait_s`
    for a slot, then gets 429 with Retry-After `retry_after_s`. 0 turns the limit off."""

    max_body_bytes: int = 64 * 1024 * 1024
    max_in_flight: int = Field(default=MAX_IN_FLIGHT, ge=0)
    queue_wait_s: float = Field(default=QUEUE_WAIT_S, ge=0, le=60)
    retry_after_s: int = Field(default=1, ge=1, le=3600)
    default_page_size: int = 50
    max_page_size: int = 1000


class Settings(BaseSettings):
    """Every setting of a modelyard process. Env prefix `MODELYARD_`, nested with `__`."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", env_nested_delimiter="__")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None  # default: sqlite:///<home>/modelyard.db
    host: str = "127.0.0.1"
    port: int = 8600
    public_url: str | None = None  # how jobs reach the API; default http://host:port
    admin_token_file: Path | None = None  # default <home>/admin-token
    blobs: BlobSettings = Field(default_factory=BlobSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    background: bool = True  # run the scheduler, pipeline engine and other loops
    # `all`: every component (`modelyard server`). `serving`: a stateless model-server replica
    # (`modelyard serve`): health, serving and /v2 routes, no scheduler or pipeline engine.
    role: Literal["all", "serving"] = "all"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'modelyard.db'}"

    @property
    def resolved_blob_root(self) -> Path:
        return self.blobs.root or self.home / "blobs"

    @property
    def resolved_admin_token_file(self) -> Path:
        return self.admin_token_file or self.home / "admin-token"

    @property
    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
