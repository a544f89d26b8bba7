"""The console's own routes: the page shell and its static files, served without a token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from modelyard.ui import STATIC_DIR


def test_console_page_is_served_without_a_token(api: TestClient) -> None:
    r = api.get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/static/js/app.js">' in r.text
    assert "{{version}}" not in r.text


def test_bare_ui_path_redirects_to_the_console(api: TestClient) -> None:
    r = api.get("/ui", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/ui/"


def test_scripts_are_served_as_javascript(api: TestClient) -> None:
    r = api.get("/ui/static/js/app.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")


def test_files_outside_the_static_folder_are_not_served(api: TestClient) -> None:
    for path in ("/ui/static/..%2F..%2Fapi.py", "/ui/static/%2E%2E/api.py",
                 "/ui/static/js/missing.js"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_every_module_the_console_imports_exists() -> None:
    """A typo in an import path breaks the whole console in the browser, with no server error."""
    js = STATIC_DIR / "js"
    for module in js.rglob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"


def test_the_console_is_not_part_of_the_api_schema(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]
