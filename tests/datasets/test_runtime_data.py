"""The training loader: pinned reads, deterministic shuffling per epoch, disjoint shards."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from modelyard.core.errors import FailedPrecondition, InvalidArgument
from modelyard.runtime.data import open_split
from modelyard.sdk.client import Client
from tests.datasets.conftest import image_rows


@pytest.fixture
def snap(images: Client) -> dict:
    images.datasets.commit_rows("imgs", image_rows(50))
    return images.datasets.snapshot("imgs", seed=11)


def test_rows_follow_the_training_schema(snap: dict) -> None:
    ds = open_split(snap, "train")
    row = ds[0]
    assert set(row) == {"image", "label"}
    assert row["image"][:4] == b"\x89PNG" and row["label"] in (0, 1, 2)
    assert snap["label_names"] == ["0", "1", "2"]


def test_shuffling_is_deterministic_per_epoch(snap: dict) -> None:
    a = open_split(snap, "train", seed=1, epoch=0)
    b = open_split(snap, "train", seed=1, epoch=0)
    order0 = a.positions_of(list(range(len(a))))
    assert order0 == b.positions_of(list(range(len(b))))
    a.set_epoch(1)
    order1 = a.positions_of(list(range(len(a))))
    assert order1 != order0 and sorted(order1) == sorted(order0)
    assert [r["image"] for r in b.__getitems__([0, 1, 2])] == [b[i]["image"] for i in range(3)]


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_are_disjoint_and_cover_the_split(snap: dict, world_size: int) -> None:
    whole = open_split(snap, "train", epoch=2)
    shards = [open_split(snap, "train", rank=r, world_size=world_size, epoch=2)
              for r in range(world_size)]
    seen = [p for s in shards for p in s.positions_of(list(range(len(s))))]
    assert len(seen) == len(set(seen)) == len(whole)
    assert sorted(seen) == sorted(whole.positions_of(list(range(len(whole)))))


def test_splits_are_disjoint(snap: dict) -> None:
    parts = [set(open_split(snap, s).positions_of(list(range(snap["split_sizes"][s]))))
             for s in ("train", "validation", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in parts) == 50


def test_another_process_reads_the_same_rows_from_the_snapshot_dict(snap: dict) -> None:
    code = (
        "import hashlib, json, sys\n"
        "from modelyard.runtime.data import open_split\n"
        "ds = open_split(json.loads(sys.stdin.read()), 'train', seed=5, epoch=3)\n"
        "h = hashlib.sha256()\n"
        "for i in range(len(ds)):\n"
        "    r = ds[i]; h.update(r['image']); h.update(str(r['label']).encode())\n"
        "print(h.hexdigest())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(snap), text=True,
                         capture_output=True, check=True, timeout=120)
    import hashlib

    ds = open_split(snap, "train", seed=5, epoch=3)
    h = hashlib.sha256()
    for i in range(len(ds)):
        r = ds[i]
        h.update(r["image"])
        h.update(str(r["label"]).encode())
    assert out.stdout.strip() == h.hexdigest()


def test_loader_survives_pickling_for_worker_processes(snap: dict) -> None:
    ds = open_split(snap, "validation")
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert [clone[i] for i in range(len(clone))] == [ds[i] for i in range(len(ds))]


def test_bad_split_rank_or_status_is_refused(snap: dict) -> None:
    with pytest.raises(InvalidArgument):
        open_split(snap, "dev")
    with pytest.raises(InvalidArgument):
        open_split(snap, "train", rank=2, world_size=2)
    with pytest.raises(FailedPrecondition):
        open_split({**snap, "status": "pending"}, "train")


def test_text_and_tabular_rows(client: Client) -> None:
    client.datasets.import_builtin("intents", "chatterbot:intents")
    text = open_split(client.datasets.snapshot("intents"), "test")
    row = text[0]
    assert isinstance(row["text"], str) and isinstance(row["labels"], list)
    client.datasets.import_builtin("iris", "sklearn:iris")
    snap = client.datasets.snapshot("iris")
    tab = open_split(snap, "train")
    assert len(tab[0]["features"]) == 4 and 0 <= tab[0]["label"] < 3
    assert snap["label_names"] == ["setosa", "versicolor", "virginica"]


def test_rows_after_deletes_are_the_pinned_versions_rows(images: Client) -> None:
    images.datasets.commit_rows("imgs", image_rows(30))
    rows = images.datasets.rows("imgs", limit=100)
    images.datasets.delete_rows("imgs", row_ids=[r["row_id"] for r in rows[::3]])
    images.datasets.commit_rows("imgs", image_rows(4, start=90))
    snap = images.datasets.snapshot("imgs")
    import lance

    pinned = lance.dataset(snap["uri"], version=snap["lance_version"])
    ds = open_split(snap, "train", shuffle=False)
    # the loader's row at each position is the pinned version's row at that position
    for i in range(len(ds)):
        want = pinned.take(ds.positions_of([i]), columns=["image", "label"]).to_pylist()[0]
        assert ds[i] == {"image": want["image"], "label": int(want["label"])}
    assert sum(snap["split_sizes"].values()) == 24
