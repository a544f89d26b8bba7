"""What a fresh machine installs: bounded dependencies, the scale-out extras, the two README
commands in the Makefile and CI running them (issue 2's foundation)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(items: list[str]) -> list[Requirement]:
    return [Requirement(item) for item in items]


def test_every_dependency_has_a_lower_and_an_upper_bound() -> None:
    project = PYPROJECT["project"]
    reqs = _requirements(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += _requirements(extra)
    unbounded = [str(r) for r in reqs
                 if not any(s.operator in (">=", ">", "==", "~=") for s in r.specifier)
                 or not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert unbounded == []


def test_torch_stays_in_the_cpu_build_range() -> None:
    (torch,) = [r for r in _requirements(PYPROJECT["project"]["dependencies"]) if r.name == "torch"]
    assert str(torch.specifier) in (">=2.3,<2.14", "<2.14,>=2.3")


def test_scale_out_extras_and_dev_exist() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {e: {r.name for r in _requirements(reqs)} for e, reqs in extras.items()}
    assert "psycopg" in names["postgres"]
    assert "boto3" in names["s3"]
    assert "ray" in names["ray"]
    assert {"pytest", "moto", "psycopg", "boto3"} <= names["dev"]
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11")
    assert PYPROJECT["project"]["scripts"]["modelyard"] == "modelyard.cli.main:main"


def test_makefile_builds_the_venv_for_demo_test_and_bench() -> None:
    make = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "bench"):
        m = re.search(rf"^{target}: (.*)$", make, re.MULTILINE)
        assert m and "$(STAMP)" in m.group(1), f"`make {target}` must build .venv first"
    assert "$(VENV)/bin/modelyard demo" in make
    assert re.search(r"pip install .*-e \"?\.\[dev\]", make)


def test_ci_runs_make_test() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    assert "make test" in ci.read_text()


def test_readme_quick_start_is_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_package_imports_on_its_own() -> None:
    """Each package, and the serving modules that once formed an import cycle (models -> _v2 ->
    server.errors -> the whole app -> serving.fastpath -> _v2, half initialized), imports in a
    fresh interpreter: a user's first import can be any of them."""
    src = ROOT / "src" / "modelyard"
    packages = sorted("modelyard." + p.parent.relative_to(src).as_posix().replace("/", ".")
                      for p in src.glob("*/__init__.py") if p.parent.name != "migrations")
    modules = [*packages, "modelyard.serving.models", "modelyard.serving._v2",
               "modelyard.serving.fastpath", "modelyard.server.errors", "modelyard.metrics.models"]
    procs = {m: subprocess.Popen([sys.executable, "-c", f"import {m}"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True) for m in modules}
    failed = {m: p.communicate(timeout=300)[1].strip().splitlines()[-1:] for m, p in procs.items()}
    assert len(packages) >= 10
    assert {m: err for m, err in failed.items() if procs[m].returncode != 0} == {}
