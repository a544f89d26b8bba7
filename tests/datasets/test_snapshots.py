"""Snapshots: commit selection, content hashes, reuse, stable data, failure and retry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import FailedPrecondition, NotFound
from modelyard.runtime.data import load_split_arrays
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from tests.datasets.conftest import image_rows


def _all_rows(snap: dict) -> dict[str, list]:
    return {s: load_split_arrays(snap, s)[0] for s in ("train", "validation", "test")}


def test_identical_requests_reuse_the_snapshot(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(40))
    a = images.datasets.snapshot("imgs", seed=3)
    b = images.datasets.snapshot("imgs", seed=3)
    assert a["status"] == "ready" and not a["reused"]
    assert b["reused"] and (b["id"], b["hash"]) == (a["id"], a["hash"])
    assert sum(a["split_sizes"].values()) == 40
    assert a["split_sizes"] == {"train": 32, "validation": 4, "test": 4}
    c = images.datasets.snapshot("imgs", seed=4)
    assert c["hash"] != a["hash"]
    assert len(images.datasets.list_snapshots("imgs")) == 2


def test_a_snapshot_is_labelled_with_the_version_asked_for_even_when_content_repeats(
        images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(10))
    first = images.datasets.snapshot("imgs")
    images.datasets.commit_rows("imgs", image_rows(2, start=50))
    added = images.datasets.rows("imgs", version=2, offset=10, limit=2)
    images.datasets.delete_rows("imgs", row_ids=[r["row_id"] for r in added])
    again = images.datasets.snapshot("imgs")  # version 3 holds exactly version 1's rows
    assert (again["version"], again["reused"]) == (3, False)
    assert again["hash"] == first["hash"]  # same content, seed, fractions: same splits
    assert _all_rows(again) == _all_rows(first)
    asked = images.datasets.snapshot("imgs", version=1)
    assert (asked["id"], asked["version"], asked["reused"]) == (first["id"], 1, True)
    assert images.datasets.snapshot("imgs", version=3)["id"] == again["id"]


def test_snapshot_reads_identical_bytes_after_more_commits(client: Client) -> None:
    client.datasets.import_builtin("digits", "sklearn:digits")
    snap = client.datasets.snapshot("digits", seed=7)
    before = _all_rows(snap)
    client.datasets.delete_rows("digits", where="label = '1'")
    client.datasets.commit_rows("digits", image_rows(5))
    client.datasets.commit_rows("digits", image_rows(3), mode="overwrite")
    again = client.datasets.get_snapshot(snap["id"])
    assert again["lance_version"] == snap["lance_version"]
    assert _all_rows(again) == before
    assert sum(len(v) for v in before.values()) == 1797
    newest = client.datasets.snapshot("digits", seed=7)
    assert newest["hash"] != snap["hash"] and sum(newest["split_sizes"].values()) == 3


def test_cutoff_and_tag_filters_pick_the_commit(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(4), tags=["raw"])
    v2 = images.datasets.commit_rows("imgs", image_rows(4, start=4), tags=["clean", "reviewed"])
    images.datasets.commit_rows("imgs", image_rows(4, start=8), tags=["raw"])
    assert images.datasets.snapshot("imgs", tags_all_of=["clean", "reviewed"])["version"] == 2
    assert images.datasets.snapshot("imgs", tags_any_of=["raw", "clean"])["version"] == 3
    assert images.datasets.snapshot("imgs", cutoff=v2["created_at"])["version"] == 2
    with pytest.raises(FailedPrecondition):
        images.datasets.snapshot("imgs", tags_all_of=["raw", "clean"])
    with pytest.raises(FailedPrecondition):
        images.datasets.snapshot("imgs", cutoff="2000-01-01T00:00:00")


def test_failed_materialization_can_be_retried(images: Client, settings) -> None:
    images.datasets.commit_rows("imgs", image_rows(12))
    ds = images.datasets.get("imgs")
    lance_dir = Path(settings.resolved_blob_root) / "datasets" / "alpha" / f"{ds['id']}.lance"
    moved = lance_dir.with_name("away")
    shutil.move(lance_dir, moved)  # the storage is unreachable for a while
    snap = images.datasets.snapshot("imgs", wait=False)
    assert snap["status"] == "failed" and snap["error"]
    with pytest.raises(FailedPrecondition):
        images.datasets.wait(snap)
    shutil.move(moved, lance_dir)
    retried = images.datasets.retry_snapshot(snap["id"])
    assert retried["status"] == "ready" and retried["id"] == snap["id"]
    assert sum(retried["split_sizes"].values()) == 12
    with pytest.raises(FailedPrecondition):
        images.datasets.retry_snapshot(snap["id"])


def test_snapshot_of_another_project_is_not_found(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(4))
    snap = images.datasets.snapshot("imgs")
    images.create_project("other")
    with pytest.raises(NotFound):
        images.datasets.get_snapshot(snap["id"], project="other")


def test_a_snapshot_left_pending_by_a_dead_server_is_finished_on_the_next_start(
        images: Client, api, settings, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    images.datasets.commit_rows("imgs", image_rows(30))
    manager = api.app.state.platform.datasets.snapshots
    # Large snapshots go to a background worker; here that worker dies with its server
    # before it starts (the record is committed as pending, nothing more happens).
    monkeypatch.setattr(manager, "inline_rows", 0)
    monkeypatch.setattr(manager, "_submit", lambda snapshot_id: None)
    snap = images.datasets.snapshot("imgs", seed=5, wait=False)
    assert snap["status"] == "pending"

    with TestClient(create_app(settings), raise_server_exceptions=False) as restarted:
        again = Client(token=admin_token, project="alpha", http=restarted)
        done = again.datasets.wait(snap, timeout_s=60)
    assert done["status"] == "ready" and done["id"] == snap["id"]
    assert sum(done["split_sizes"].values()) == 30
    assert sum(len(rows) for rows in _all_rows(done).values()) == 30


def test_sample_inputs_is_a_seeded_bounded_sample_of_a_split_as_model_inputs(
        api: TestClient, images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(40))
    snap = images.datasets.snapshot("imgs", seed=3)
    datasets = api.app.state.platform.datasets  # type: ignore[attr-defined]
    train = [r["image"] for r in load_split_arrays(snap, "train")[0]]
    some = datasets.sample_inputs("alpha", snap["id"], "train", 10, 1)
    assert len(some) == 10 and set(some) <= set(train)  # PNG bytes, what a client sends
    assert datasets.sample_inputs("alpha", snap["id"], "train", 10, 1) == some
    assert sorted(datasets.sample_inputs("alpha", snap["id"], "train", 100)) == sorted(train)
    with pytest.raises(NotFound):
        datasets.sample_inputs("beta", snap["id"])
