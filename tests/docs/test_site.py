"""The documentation site builds with `mkdocs build --strict` and works offline.

Strict: a broken link, a missing page in the nav, an API reference to a name that no longer
exists or a setting without a meaning fails the build, so it fails `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    got = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    log = got.stdout + got.stderr
    assert got.returncode == 0, log[-6000:]
    return out, log


def test_site_builds_strict_without_a_warning(site: tuple[Path, str]) -> None:
    out, log = site
    assert not re.search(r"^WARNING", log, re.MULTILINE), log[-6000:]
    for page in ("index.html", "tutorials/images/index.html", "reference/cli/index.html",
                 "reference/settings/index.html", "reference/sdk/index.html",
                 "reference/runtime/index.html", "reference/pipelines/index.html",
                 "reference/rest-api/index.html", "security/index.html"):
        assert (out / page).is_file(), page


def test_generated_references_cover_the_code(site: tuple[Path, str]) -> None:
    from modelyard.core.settings import Settings

    out, _ = site
    settings = (out / "reference/settings/index.html").read_text()
    for name, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        names = [f"{name}__{s}" for s in sub] if sub else [name]
        for n in names:
            assert f"MODELYARD_{n.upper()}" in settings, n
    cli = (out / "reference/cli/index.html").read_text()
    for command in ("modelyard dataset import", "modelyard train submit", "modelyard hpo create",
                    "modelyard pipeline register", "modelyard deploy predict"):
        assert command in cli, command
    assert '"openapi"' in (out / "reference/openapi.json").read_text()[:200]


def test_site_loads_nothing_from_the_network(site: tuple[Path, str]) -> None:
    out, _ = site
    external = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")
    for html in out.rglob("*.html"):
        text = html.read_text(errors="replace")
        hits = [m.group(0) for m in external.finditer(text)
                if "rel=\"canonical\"" not in m.group(0)]
        assert not hits, f"{html.relative_to(out)} loads {hits[:3]} from the network"
    assert (out / "assets/vendor/mermaid.min.js").stat().st_size > 100_000
