"""A writer killed between the Lance commit and the metadata commit leaves no half commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelyard.core.blobs import LocalBlobStore
from modelyard.core.db import Database
from modelyard.datasets.models import DatasetCreate
from modelyard.datasets.service import DatasetService
from tests.datasets.conftest import image_rows

# The child commits, and dies (SIGKILL-like, no cleanup) the moment Lance has committed but
# before the metadata row is written: the worst place for a crash.
CHILD = """
import os, sys
from modelyard.core.blobs import LocalBlobStore
from modelyard.core.db import Database
from modelyard.datasets.service import DatasetService
from tests.datasets.conftest import image_rows
db = Database(sys.argv[1])
svc = DatasetService(db, LocalBlobStore(sys.argv[2]), None)
svc.store.add_commit = lambda commit: os._exit(9)
svc.commit_rows("p", "imgs", image_rows(7, start=100), "killer", message="never visible")
"""


def _service(tmp_path: Path) -> tuple[DatasetService, str, str]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    db = Database(url)
    db.migrate()
    blobs = tmp_path / "blobs"
    return DatasetService(db, LocalBlobStore(blobs), None), url, str(blobs)  # type: ignore[arg-type]


def test_killed_commit_leaves_previous_version_intact(tmp_path: Path) -> None:
    svc, url, blobs = _service(tmp_path)
    svc.create_dataset("p", DatasetCreate(name="imgs", type="image_classification"), "me")
    svc.commit_rows("p", "imgs", image_rows(5), "me", message="good")
    before = svc.rows("p", "imgs", limit=100)

    child = subprocess.run([sys.executable, "-c", CHILD, url, blobs], capture_output=True,
                           text=True, timeout=120, check=False, cwd=Path(__file__).parents[2])
    assert child.returncode == 9, child.stderr

    assert [c.version for c in svc.list_versions("p", "imgs")] == [1]
    assert svc.rows("p", "imgs", limit=100) == before
    assert svc.stats("p", "imgs")["row_count"] == 5

    nxt = svc.commit_rows("p", "imgs", image_rows(2, start=200), "me", message="after crash")
    assert (nxt.version, nxt.row_count, nxt.rows_added) == (2, 7, 2)
    assert len(svc.rows("p", "imgs", limit=100)) == 7  # the dead writer's 7 rows are not there
    assert svc.diff("p", "imgs", 1, 2).rows_added == 2
