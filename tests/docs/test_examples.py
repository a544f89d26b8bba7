"""Every code block of the tutorials and how-to guides, run against a live embedded server.

One server for the module; each page runs in its own directory and creates its own project,
so a page can build on its earlier blocks but not on other pages. See `_examples.py` for the
conventions (skip markers, files written from titled blocks).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.server.embedded import embedded_server
from tests.docs._examples import BlockFailed, PageRun, parse, reader_env

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for d in ("tutorials", "how-to") for p in (DOCS / d).rglob("*.md"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("docs-server") / "home"
    with embedded_server(Settings(home=home)) as settings:
        yield settings.resolved_public_url, home


@pytest.mark.e2e
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page: Path, live: tuple[str, Path], tmp_path: Path) -> None:
    url, home = live
    blocks = parse(page)
    PageRun(tmp_path / "work", reader_env(url, home)).run(blocks)


def test_a_stale_example_fails_with_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "stale.md"
    page.write_text("# A page\n\n```bash\necho fine\n```\n\n<!-- docs: skip: shown only -->\n"
                    "```bash\nexit 3\n```\n\n```bash\nmodelyard no-such-command\n```\n")
    blocks = parse(page)
    assert [b.skip for b in blocks] == [None, "shown only", None]
    run = PageRun(tmp_path / "work", reader_env("http://127.0.0.1:9", tmp_path / "home"))
    with pytest.raises(BlockFailed, match=r"stale\.md:12: exited 2"):
        run.run(blocks)


def test_blocks_share_a_shell_session_and_files_from_titled_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('```text title="sub/greeting.txt"\nhello\n```\n\n'
                    "```console\n$ export WHO=reader\n$ mkdir -p sub && cd sub\n"
                    "some output that is not run\n```\n\n"
                    '```python\nimport os, pathlib\nassert os.environ["WHO"] == "reader"\n'
                    'assert pathlib.Path("greeting.txt").read_text() == "hello\\n"\n'
                    "seen = os.getcwd()\n```\n\n"
                    '```bash\ntest "$(cat greeting.txt)" = hello\n```\n')
    run = PageRun(tmp_path / "work", reader_env("http://127.0.0.1:9", tmp_path / "home"))
    assert run.run(parse(page)) == 4
    assert str(run.namespace["seen"]).endswith("sub")


def test_a_skip_marker_needs_a_reason(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- docs: skip -->\n```bash\ntrue\n```\n")
    with pytest.raises(AssertionError, match="gives no reason"):
        parse(page)


def test_every_page_has_runnable_blocks_or_says_why_not() -> None:
    """A page whose examples all skip must say so once: a guard against marking a whole page
    skipped to make a stale doc pass."""
    for page in PAGES:
        blocks = parse(page)
        if blocks and not any(b.runs for b in blocks):
            assert "<!-- docs: page runs nothing:" in page.read_text(), (
                f"{page}: every block is skipped; say why with "
                "<!-- docs: page runs nothing: REASON -->")
