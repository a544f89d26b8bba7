"""A throwaway Prometheus (Debian package) on 127.0.0.1 scraping given targets every second."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests._servers.apt import ensure_binary
from tests._servers.ports import free_port, listening


@contextmanager
def prometheus_server(targets: list[str]) -> Iterator[str]:
    """Yields the base URL of a Prometheus scraping `targets` (host:port, path /metrics)."""
    binary = ensure_binary("prometheus", "prometheus")
    tmp = Path(tempfile.mkdtemp(prefix="modelyard-prom-"))
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: modelyard\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    port = free_port()
    try:
        with listening([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], port):
            yield f"http://127.0.0.1:{port}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def instant(url: str, promql: str) -> list[dict[str, object]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]  # type: ignore[no-any-return]
