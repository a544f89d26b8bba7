"""Request latency of `GET /api/v1/projects/{p}` on the in-process app vs a bare FastAPI endpoint.

Both apps answer the same question from the same SQLite file through the same in-process
transport (Starlette's TestClient), so the ratio is what modelyard adds per request: token
authentication (hash lookup + role query), the project access check, the body-limit middleware,
error mapping and response models. Samples of the two apps are taken in alternating batches so
that drift of the machine hits both alike.

    python -m bench.api_bench [--requests 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from bench._harness import percentile, write_result
from modelyard.core.settings import Settings
from modelyard.server.app import create_app

PROJECT = "bench"


def plain_app(db_url: str) -> FastAPI:
    """The peer: one FastAPI route running the same project query, no auth, no middleware."""
    engine = sa.create_engine(db_url, connect_args={"check_same_thread": False})
    app = FastAPI()
    query = sa.text("SELECT id, name, description, created_at, created_by FROM projects "
                    "WHERE name = :name")

    @app.get("/projects/{project}")
    def get_project(project: str) -> dict[str, Any]:
        with engine.connect() as conn:
            row = conn.execute(query, {"name": project}).mappings().first()
        if row is None:
            raise HTTPException(404, "no such project")
        return dict(row)

    return app


def sample(client: TestClient, url: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(ms, 50), 4), "p99_ms": round(percentile(ms, 99), 4),
            "mean_ms": round(sum(ms) / len(ms), 4), "min_ms": round(min(ms), 4), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home", background=False)
        with TestClient(create_app(settings)) as yard:
            token = settings.resolved_admin_token_file.read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}
            r = yard.post("/api/v1/projects", json={"name": PROJECT}, headers=auth)
            assert r.status_code == 201, r.text
            with TestClient(plain_app(settings.resolved_database_url)) as plain:
                ours_url, theirs_url = f"/api/v1/projects/{PROJECT}", f"/projects/{PROJECT}"
                assert plain.get(theirs_url).json()["name"] == yard.get(
                    ours_url, headers=auth).json()["name"] == PROJECT
                sample(yard, ours_url, auth, 200)  # warm-up: imports, caches, connections
                sample(plain, theirs_url, {}, 200)
                ours: list[float] = []
                theirs: list[float] = []
                while len(ours) < args.requests:
                    ours += sample(yard, ours_url, auth, args.batch)
                    theirs += sample(plain, theirs_url, {}, args.batch)

    mine, peer = summary(ours), summary(theirs)
    ratio_p50 = mine["p50_ms"] / peer["p50_ms"]
    ratio_p99 = mine["p99_ms"] / peer["p99_ms"]
    write_result(
        name="api_latency",
        goal="GET /api/v1/projects/{p} (auth + access check + error mapping) at p50 within 3x "
             "of a bare FastAPI endpoint running the same SQLite query",
        metric="p50_ratio_vs_plain_fastapi",
        value=round(ratio_p50, 3),
        target=3.0,
        higher_is_better=False,
        figures={"modelyard": mine, "p50_ratio": round(ratio_p50, 3),
                 "p99_ratio": round(ratio_p99, 3), "transport": "starlette TestClient (in-process)",
                 "database": "SQLite (WAL) file", "requests_per_app": len(ours),
                 "batch": args.batch},
        peers={"plain_fastapi": peer},
        script=__file__,
    )


if __name__ == "__main__":
    main()
