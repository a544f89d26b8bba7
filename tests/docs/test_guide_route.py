"""The server serves the built user guide at /docs/guide/ without a token, and `modelyard docs`
prints its URL; without a built site both say how to build it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.server import guide
from tests.cli.runner import run


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    (site / "tutorials" / "images").mkdir(parents=True)
    (site / "index.html").write_text("<h1>modelyard guide</h1>")
    (site / "tutorials" / "images" / "index.html").write_text("<h1>Images</h1>")
    (site / "assets").mkdir()
    (site / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not part of the site")
    monkeypatch.setattr(guide, "site_dir", lambda: site)
    return site


def test_guide_pages_are_served_without_a_token(api: TestClient, built: Path) -> None:
    assert api.get("/docs/guide", follow_redirects=False).status_code == 307
    home = api.get("/docs/guide/")
    assert home.status_code == 200 and "modelyard guide" in home.text
    page = api.get("/docs/guide/tutorials/images/")
    assert page.status_code == 200 and "Images" in page.text
    js = api.get("/docs/guide/assets/app.js")
    assert js.headers["content-type"].startswith("text/javascript")


def test_guide_never_serves_a_file_outside_the_site(api: TestClient, built: Path) -> None:
    for path in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt"):
        got = api.get(f"/docs/guide/{path}")
        assert got.status_code == 404 and "not part of the site" not in got.text, path


def test_without_a_built_site_the_guide_says_how_to_build_it(
        api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guide, "site_dir", lambda: None)
    got = api.get("/docs/guide/")
    assert got.status_code == 404 and "make docs" in got.json()["error"]["message"]


@pytest.mark.e2e
def test_docs_command_prints_the_guide_url_of_a_live_server(
        settings: object, built: Path) -> None:
    from modelyard.server.embedded import embedded_server

    with embedded_server(settings) as live:  # type: ignore[arg-type]
        out = run(["--url", live.resolved_public_url, "docs"], {})
        assert out.code == 0, out.stderr
        assert out.stdout.strip() == f"{live.resolved_public_url}/docs/guide/"
    refused = run(["--url", "http://127.0.0.1:9", "docs"], {})
    assert refused.code == 1 and "modelyard server" in refused.err_text
