"""Two server processes committing to one dataset at once (two replicas of the API over one
metadata database and one blob root): every commit lands as its own version, and no version
holds rows of a commit other than those before it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelyard.core.blobs import LocalBlobStore
from modelyard.datasets.models import DatasetCreate
from modelyard.datasets.service import DatasetService
from tests._servers.databases import BACKENDS, fresh_database

COMMITS, ROWS = 6, 50

WRITER = textwrap.dedent("""
    import sys
    from modelyard.core.blobs import LocalBlobStore
    from modelyard.core.db import Database
    from modelyard.datasets.service import DatasetService

    url, root, tag = sys.argv[1:4]
    svc = DatasetService(Database(url), LocalBlobStore(root), None)
    for i in range({commits}):
        rows = [{{"text": f"{{tag}} {{i}} {{j}}", "labels": [tag]}} for j in range({rows})]
        svc.commit_rows("p", "texts", rows, tag, message=f"{{tag}} {{i}}")
""").format(commits=COMMITS, rows=ROWS)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path):
    with fresh_database(request, tmp_path) as database:
        yield database


def test_concurrent_commits_from_two_processes_stay_whole(db, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    svc = DatasetService(db, LocalBlobStore(root), None)  # type: ignore[arg-type]
    svc.create_dataset("p", DatasetCreate(name="texts", type="text_intent"), "test")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, db.url, str(root), tag],
                                stderr=subprocess.PIPE, text=True) for tag in ("left", "right")]
    for w in writers:
        _, err = w.communicate(timeout=240)
        assert w.returncode == 0, err[-2000:]

    versions = sorted(svc.list_versions("p", "texts"), key=lambda c: c.version)
    assert [c.version for c in versions] == list(range(1, 2 * COMMITS + 1))
    data = svc.data(svc.get_dataset("p", "texts"))
    seen: set[str] = set()
    for c in versions:
        texts = set(data.column(c.lance_version, "text"))
        # each version is its parent plus exactly the rows its own commit sent
        author, i = c.message.split()
        assert texts - seen == {f"{author} {i} {j}" for j in range(ROWS)}
        assert seen <= texts and c.row_count == len(texts) == len(seen) + ROWS
        seen = texts
    assert len(seen) == 2 * COMMITS * ROWS
