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


def test_a_snapshot_of_a_collected_version_says_it_was_collected(api: TestClient,
                                                                 images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(5))
    images.datasets.commit_rows("imgs", image_rows(5, start=5))
    api.app.state.platform.datasets.collect_garbage("alpha", retention_s=0)
    with pytest.raises(FailedPrecondition) as e:
        images.datasets.snapshot("imgs", version=1)
    assert "garbage-collected" in e.value.message and e.value.details["version"] == 1
    assert "no commit matches" not in e.value.message
    assert images.datasets.snapshot("imgs", version=2)["version"] == 2


_KILLED_WRITER = """
import sys, lance, pyarrow as pa
rows = lance.dataset(sys.argv[1]).to_table()
def batches():
    while True:  # endless: the parent kills this writer while Lance stages its data file
        yield from rows.to_batches()
lance.write_dataset(pa.RecordBatchReader.from_batches(rows.schema, batches()), sys.argv[1],
                    mode="append")
"""


def test_gc_removes_what_a_writer_killed_mid_commit_left(api: TestClient, images: Client,
                                                         settings) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import lance

    images.datasets.commit_rows("imgs", image_rows(6))
    ds = images.datasets.get("imgs")
    lance_dir = Path(settings.resolved_blob_root) / "datasets" / "alpha" / f"{ds['id']}.lance"
    data_dir = lance_dir / "data"
    kept = set(data_dir.iterdir())
    # a data file written in full but never committed (killed between the two steps)
    lds = lance.dataset(str(lance_dir))
    lance.fragment.write_fragments(lds.to_table().slice(0, 3), str(lance_dir), schema=lds.schema)
    # a writer killed while Lance stages its data file
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(lance_dir)])
    try:
        deadline = time.monotonic() + 60
        while not list(data_dir.glob(".tmp*")) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    left = set(data_dir.iterdir()) - kept
    assert any(p.name.startswith(".tmp") for p in left) and len(left) >= 2

    report = api.app.state.platform.datasets.collect_garbage("alpha", retention_s=3600)

    assert set(data_dir.iterdir()) == kept
    assert report.orphan_files_removed == len(left) and report.bytes_freed > 0
    assert report.commits_collected == 0
    assert len(images.datasets.rows("imgs", limit=100)) == 6
    after = images.datasets.commit_rows("imgs", image_rows(2, start=50))  # still writable
    assert after["row_count"] == 8
