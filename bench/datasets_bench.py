"""Datasets vs DVC: commit 100,000 small image files, change 1% and commit again; loader speed.

Same files, same machine, same run of this script:
  * the images are sklearn digits upscaled to 16x16 with a seeded shift and noise, written as
    PNG files, one sub-folder per class (the layout both tools ingest);
  * modelyard: `DatasetService.commit_rows` (validation, Lance write, statistics, metadata on
    SQLite) from the files, timed from reading the files to the recorded version;
  * DVC (its own venv): `dvc add data` then `git add` + `git commit` of the .dvc file;
  * the 1% change rewrites 1,000 of the files; modelyard commits it as one `replace` version
    (the old rows out by id, the new ones in; finding the ids is timed too), DVC re-adds the
    folder;
  * loader: one shuffled epoch over a snapshot's train split through a torch DataLoader
    (batch 256), beside a shuffled read of the same files from disk.

    python -m bench.datasets_bench [--images 100000] [--skip-dvc]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import make_peer_venv, write_result

DVC_PACKAGES = ["dvc>=3.50,<4"]


def _png(pixels: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def make_images(root: Path, n: int, seed: int = 0) -> list[tuple[Path, str]]:
    """n augmented digits (16x16, seeded shift and noise) as PNG files under root/<label>/."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    files = []
    for lo in range(0, n, 10_000):
        idx = np.arange(lo, min(n, lo + 10_000)) % len(d.images)
        imgs = d.images[idx].repeat(2, axis=1).repeat(2, axis=2) * 15  # 8x8 -> 16x16
        imgs = imgs + rng.normal(0, 6, imgs.shape)
        shifts = rng.integers(-2, 3, (len(idx), 2))
        for j, k in enumerate(idx):
            i = lo + j
            img = np.roll(imgs[j], tuple(shifts[j]), axis=(0, 1)).clip(0, 255).astype(np.uint8)
            label = str(int(d.target[k]))
            path = root / label / f"{i:06d}.png"
            path.write_bytes(_png(img))
            files.append((path, label))
    return files


def change_files(files: list[tuple[Path, str]], fraction: float, seed: int = 1) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    picked = sorted(random.Random(seed).sample(range(len(files)), int(len(files) * fraction)))
    for i in picked:
        path, _ = files[i]
        noise = rng.integers(0, 256, (16, 16)).astype(np.uint8)
        path.write_bytes(_png(noise))
    return picked


def _rows(files: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    return [{"image": p.read_bytes(), "label": label} for p, label in files]


def modelyard_first(files: list[tuple[Path, str]], work: Path) -> tuple[Any, dict[str, float]]:
    from modelyard.core.blobs import LocalBlobStore
    from modelyard.core.db import Database
    from modelyard.datasets.models import DatasetCreate
    from modelyard.datasets.service import DatasetService

    db = Database(f"sqlite:///{work / 'meta.db'}")
    db.migrate()
    svc = DatasetService(db, LocalBlobStore(work / "blobs"), None)  # type: ignore[arg-type]
    svc.create_dataset("bench", DatasetCreate(name="imgs", type="image_classification"), "bench")
    t0 = time.perf_counter()
    svc.commit_rows("bench", "imgs", _rows(files), "bench", message="first")
    return svc, {"first_commit_s": time.perf_counter() - t0}


def modelyard_change(svc: Any, files: list[tuple[Path, str]], changed: list[int]) -> dict[str, float]:
    ds = svc.get_dataset("bench", "imgs")
    head = svc.get_version("bench", "imgs")
    t0 = time.perf_counter()
    ids = svc.data(ds).column(head.lance_version, "row_id")  # row i is file i (append order)
    svc.commit_rows("bench", "imgs", _rows([files[i] for i in changed]), "bench",
                    mode="replace", row_ids=[ids[i] for i in changed], message="changed files")
    return {"change_commit_s": time.perf_counter() - t0}


def loader_speed(svc: Any, files: list[tuple[Path, str]]) -> dict[str, float]:
    from torch.utils.data import DataLoader

    from modelyard.datasets.models import SnapshotRequest
    from modelyard.runtime.data import open_split

    snap = svc.create_snapshot("bench", "imgs", SnapshotRequest(), "bench")
    while snap.status == "pending":  # large snapshots materialize in the background
        time.sleep(0.1)
        snap = svc.get_snapshot("bench", snap.id)
    train = open_split(snap.model_dump(mode="json"), "train", epoch=0)
    loader = DataLoader(train, batch_size=256, collate_fn=lambda rows: rows)
    t0 = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    loader_s = time.perf_counter() - t0
    order = list(range(len(files)))
    random.Random(0).shuffle(order)
    t0 = time.perf_counter()
    for i in order[:n]:
        files[i][0].read_bytes()
    files_s = time.perf_counter() - t0
    return {"loader_samples": n, "loader_samples_per_s": n / loader_s,
            "files_shuffled_read_samples_per_s": n / files_s}


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def dvc_commit(repo: Path, dvc: str, env: dict[str, str], message: str) -> float:
    t0 = time.perf_counter()
    _run([dvc, "add", "-q", "data"], repo, env)
    _run(["git", "add", "data.dvc", ".gitignore"], repo, env)
    _run(["git", "commit", "-q", "-m", message], repo, env)
    return time.perf_counter() - t0


def dvc_init(repo: Path, dvc: str, env: dict[str, str]) -> None:
    _run(["git", "init", "-q"], repo, env)
    _run([dvc, "init", "-q"], repo, env)
    _run([dvc, "config", "core.analytics", "false"], repo, env)
    _run(["git", "commit", "-q", "-m", "init"], repo, env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--skip-dvc", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelyard-dsbench-"))
    try:
        repo = work / "repo"
        t0 = time.perf_counter()
        files = make_images(repo / "data", args.images)
        figures: dict[str, Any] = {"images": args.images, "change_fraction": args.change,
                                   "generate_s": time.perf_counter() - t0,
                                   "bytes": sum(p.stat().st_size for p, _ in files)}
        (work / "my").mkdir()
        svc, mine = modelyard_first(files, work / "my")
        peers: dict[str, Any] = {}
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "bench",
               "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
               "GIT_COMMITTER_EMAIL": "bench@example.com"}
        dvc = None
        if not args.skip_dvc:
            dvc = str(make_peer_venv("dvc", DVC_PACKAGES).parent / "dvc")
            dvc_init(repo, dvc, env)
            peers["dvc"] = {"first_commit_s": dvc_commit(repo, dvc, env, "first")}
        changed = change_files(files, args.change)
        mine.update(modelyard_change(svc, files, changed))
        if dvc:
            peers["dvc"]["change_commit_s"] = dvc_commit(repo, dvc, env, "change")
            version = subprocess.run([dvc, "--version"], capture_output=True, text=True, env=env,
                                     check=False)
            peers["dvc"]["version"] = version.stdout.strip()
        mine.update(loader_speed(svc, files))
        mine["change_cost_ratio"] = mine["change_commit_s"] / mine["first_commit_s"]
        figures["modelyard"] = mine
        script = __file__
        write_result(
            "datasets_change_cost", "a 1% change costs at most 5% of the first commit",
            "change_commit_s / first_commit_s", round(mine["change_cost_ratio"], 4), 0.05, False,
            figures, peers, script)
        if "dvc" in peers:
            speedup = peers["dvc"]["first_commit_s"] / mine["first_commit_s"]
            figures["dvc_change_vs_modelyard_change"] = (
                peers["dvc"]["change_commit_s"] / mine["change_commit_s"])
            write_result(
                "datasets_commit_vs_dvc", "commit at least 10x faster than DVC (dvc add + git commit)",
                "dvc_first_commit_s / modelyard_first_commit_s", round(speedup, 3), 10.0, True,
                figures, peers, script)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
