"""Retention and garbage collection: unreferenced data goes, lineage-referenced data stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import FailedPrecondition, PermissionDenied
from modelyard.runtime.data import load_split_arrays
from modelyard.sdk.client import Client
from tests.datasets.conftest import image_rows


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_gc_keeps_what_lineage_references_and_the_head(api: TestClient, images: Client,
                                                      settings) -> None:
    platform = api.app.state.platform
    images.datasets.commit_rows("imgs", image_rows(20))
    used = images.datasets.snapshot("imgs", seed=1)
    platform.registry.add_edge("alpha", "dataset_snapshot", used["id"], "job", "job_123", "read_by")
    before = {s: load_split_arrays(used, s)[0] for s in ("train", "validation", "test")}
    images.datasets.commit_rows("imgs", image_rows(30, start=20))
    unused = images.datasets.snapshot("imgs", seed=1)
    images.datasets.commit_rows("imgs", image_rows(5, start=100), mode="overwrite")
    images.datasets.commit_rows("imgs", image_rows(5, start=200))
    ds = images.datasets.get("imgs")
    lance_dir = Path(settings.resolved_blob_root) / "datasets" / "alpha" / f"{ds['id']}.lance"
    size_before = _dir_size(lance_dir)

    report = platform.datasets.collect_garbage("alpha", retention_s=0)

    assert report.commits_collected == 2 and report.snapshots_deleted == 1
    assert used["id"] in report.kept_for_lineage
    assert report.bytes_freed > 0 and _dir_size(lance_dir) < size_before
    versions = {v["version"]: v for v in images.datasets.versions("imgs")}
    assert [v for v, c in versions.items() if c["collected_at"]] == [2, 3]
    # the referenced snapshot still reads the same bytes; the head is intact
    again = images.datasets.get_snapshot(used["id"])
    assert {s: load_split_arrays(again, s)[0] for s in before} == before
    assert images.datasets.stats("imgs")["row_count"] == 10
    assert len(images.datasets.rows("imgs", limit=100)) == 10
    with pytest.raises(FailedPrecondition):
        images.datasets.rows("imgs", version=2)
    with pytest.raises(FailedPrecondition):
        images.datasets.snapshot("imgs", version=2)
    assert images.datasets.stats("imgs", version=2)["row_count"] == 50  # metadata stays
    assert unused["id"] not in {s["id"] for s in images.datasets.list_snapshots("imgs")}
    # a second pass finds nothing more to do
    assert platform.datasets.collect_garbage("alpha", retention_s=0).commits_collected == 0


def test_recent_versions_are_kept_by_retention(api: TestClient, images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(5))
    images.datasets.commit_rows("imgs", image_rows(5, start=5))
    report = images.datasets.gc(retention_days=7)
    assert report["commits_collected"] == 0
    assert len(images.datasets.rows("imgs", version=1, limit=100)) == 5


def test_soft_deleted_dataset_is_purged_after_retention(api: TestClient, images: Client,
                                                        settings) -> None:
    images.datasets.commit_rows("imgs", image_rows(5))
    images.datasets.snapshot("imgs")
    ds = images.datasets.get("imgs")
    images.datasets.delete("imgs")
    lance_dir = Path(settings.resolved_blob_root) / "datasets" / "alpha" / f"{ds['id']}.lance"
    assert lance_dir.exists()
    platform = api.app.state.platform
    assert platform.datasets.collect_garbage("alpha", retention_s=3600).datasets_purged == 0
    report = platform.datasets.collect_garbage("alpha", retention_s=0)
    assert report.datasets_purged == 1 and report.snapshots_deleted == 1
    assert not lance_dir.exists()


def test_gc_needs_admin(api: TestClient, team) -> None:
    from modelyard.sdk.client import Client as C

    editor = C(token=team.editor, project="alpha", http=api)
    with pytest.raises(PermissionDenied):
        editor.datasets.gc()


def test_large_snapshots_materialize_in_the_background(api: TestClient, images: Client,
                                                      admin_token: str) -> None:
    api.app.state.platform.datasets.snapshots.inline_rows = 0
    images.datasets.commit_rows("imgs", image_rows(30))
    r = api.post("/api/v1/projects/alpha/datasets/imgs/snapshots", json={"seed": 2},
                 headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 202 and r.json()["status"] == "pending"
    snap = images.datasets.wait(r.json(), timeout_s=60)
    assert snap["status"] == "ready" and sum(snap["split_sizes"].values()) == 30
