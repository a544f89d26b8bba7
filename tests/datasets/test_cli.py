"""`modelyard dataset ...` against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from tests._servers.live import live_server
from tests.cli.runner import run
from tests.datasets.conftest import png


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    settings = Settings(home=tmp_path_factory.mktemp("dscli") / "home", background=False)
    with live_server(settings) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        env = {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": "alpha"}
        assert run(["project", "create", "alpha"], env).code == 0
        yield env


def test_import_versions_stats_snapshot_and_diff(server: dict[str, str | None]) -> None:
    out = run(["dataset", "import", "iris", "sklearn:iris", "-m", "first"], server)
    assert out.code == 0, out.stderr
    assert "150" in out.stdout
    assert run(["dataset", "import", "iris", "sklearn:wine"], server).code == 1
    stats = run(["--json", "dataset", "stats", "iris"], server)
    assert json.loads(stats.stdout)["label_counts"] == {"setosa": 50, "versicolor": 50,
                                                       "virginica": 50}
    snap = run(["--json", "dataset", "snapshot", "iris", "--seed", "3"], server)
    assert snap.code == 0, snap.stderr
    body = json.loads(snap.stdout)
    assert body["status"] == "ready" and sum(body["split_sizes"].values()) == 150
    again = json.loads(run(["--json", "dataset", "snapshot", "iris", "--seed", "3"], server).stdout)
    assert again["id"] == body["id"] and again["reused"]
    versions = run(["dataset", "versions", "iris"], server)
    assert versions.code == 0 and "first" in versions.stdout


def test_commit_files_and_folders_with_diff(server: dict[str, str | None], tmp_path: Path) -> None:
    assert run(["dataset", "create", "talk", "--type", "text_intent"], server).code == 0
    f = tmp_path / "rows.csv"
    f.write_text("text,labels\nhello,greet\nbye,farewell\nhey,greet\n")
    out = run(["dataset", "commit", "talk", str(f), "-m", "csv", "--tags", "raw"], server)
    assert out.code == 0, out.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("text,labels\nhello,greet,oops\n")
    failed = run(["dataset", "commit", "talk", str(bad)], server)
    assert failed.code == 1 and "malformed CSV" in failed.err_text
    more = tmp_path / "more.jsonl"
    more.write_text('{"text": "ciao", "labels": ["farewell"]}\n')
    assert run(["dataset", "commit", "talk", str(more)], server).code == 0
    diff = run(["--json", "dataset", "diff", "talk", "1", "2"], server)
    d = json.loads(diff.stdout)
    assert (d["rows_added"], d["rows_removed"], d["label_change"]) == (1, 0, {"farewell": 1})
    shown = run(["dataset", "show", "talk"], server)
    assert shown.code == 0 and "hello" in shown.stdout

    folder = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for i in range(3):
            (folder / label / f"{i}.png").write_bytes(png(i * 40))
    assert run(["dataset", "create", "pets", "--type", "image_classification"], server).code == 0
    assert run(["dataset", "commit", "pets", str(folder)], server).code == 0
    stats = json.loads(run(["--json", "dataset", "stats", "pets"], server).stdout)
    assert stats["label_counts"] == {"cat": 3, "dog": 3}
    listed = json.loads(run(["--json", "dataset", "list"], server).stdout)
    assert {"pets", "talk"} <= {d["name"] for d in listed}


def test_a_folder_holding_a_non_image_is_an_error_line_naming_it(
        server: dict[str, str | None], tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    (folder / "cat").mkdir(parents=True)
    (folder / "cat" / "0.png").write_bytes(png(10))
    (folder / "cat" / "notes.txt").write_text("not an image")
    (folder / "cat" / "half.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert run(["dataset", "create", "mixed", "--type", "image_classification"], server).code == 0
    out = run(["dataset", "commit", "mixed", str(folder)], server)
    assert out.code == 1
    assert "Traceback" not in out.stdout + out.stderr
    assert "notes.txt" in out.err_text and "half.jpg" in out.err_text
    assert "not a readable image" in out.err_text
    shown = json.loads(run(["--json", "dataset", "show", "mixed"], server).stdout)
    assert shown["head_version"] is None  # nothing was committed


def test_cli_commits_delete_and_replace(server: dict[str, str | None], tmp_path: Path) -> None:
    assert run(["dataset", "create", "chat", "--type", "text_intent"], server).code == 0
    f = tmp_path / "chat.csv"
    f.write_text("text,labels\nhelo,greet\nbye,farewell\nhey,greet|smalltalk\n")
    assert run(["dataset", "commit", "chat", str(f)], server).code == 0
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("text,labels\nhello,greet\n")
    out = run(["--json", "dataset", "commit", "chat", str(fixed), "--mode", "replace",
               "--where", "text = 'helo'", "-m", "typo"], server)
    assert out.code == 0, out.stderr
    assert (json.loads(out.stdout)["operation"], json.loads(out.stdout)["row_count"]) == ("replace", 3)
    rows = json.loads(run(["--json", "dataset", "show", "chat"], server).stdout)
    assert rows["head_version"] == 2
    out = run(["--json", "dataset", "commit", "chat", "--mode", "delete", "--where",
               "array_has_any(labels, ['smalltalk'])"], server)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["rows_removed"] == 1
    stats = json.loads(run(["--json", "dataset", "stats", "chat"], server).stdout)
    assert stats["label_counts"] == {"farewell": 1, "greet": 1}
    bad = run(["dataset", "commit", "chat", "--mode", "delete", "--where", "1=1; DROP TABLE x"],
              server)
    assert bad.code == 1 and "Traceback" not in bad.stderr and "where" in bad.err_text
    assert run(["dataset", "commit", "chat", "--mode", "delete"], server).code != 0  # no filter
    gone = run(["dataset", "commit", "chat", "--mode", "delete", "--row-id", "rnosuch"], server)
    assert gone.code == 1 and "nothing was committed" in gone.err_text.lower()
    assert run(["--json", "dataset", "gc", "--retention-days", "0"], server).code == 0
    versions = run(["dataset", "versions", "chat"], server)
    assert versions.code == 0 and versions.stdout.count("yes, 20") == 2
    listed = json.loads(run(["--json", "dataset", "versions", "chat"], server).stdout)
    assert [v["version"] for v in listed if v["collected_at"]] == [1, 2]
