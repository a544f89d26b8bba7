"""Pipeline code packages for the tests: the `package/` folder zipped as a user would, and
small packages written inline (hostile ones); step run counters shared with the steps."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from modelyard.workflows.models import Pipeline
from modelyard.workflows.service import WorkflowService

HERE = Path(__file__).parent
SOURCE = HERE / "package"
DIGITS = HERE.parent / "serving" / "_digits.py"  # the steps' classifier, shipped beside them
MODULE = "wfpipes"  # the package's module: the server must never import it


def files() -> dict[str, bytes]:
    """The package's files: `package/` plus `_digits.py`."""
    found = {p.relative_to(SOURCE).as_posix(): p.read_bytes()
             for p in sorted(SOURCE.rglob("*.py"))}
    return {**found, "_digits.py": DIGITS.read_bytes()}


def zipped(members: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def package() -> bytes:
    return zipped(dict(files()))


def register(wf: WorkflowService, attr: str, project: str = "alpha",
             actor: str = "tester") -> Pipeline:
    """Registers `wfpipes:<attr>` from the tests' package, as an upload would."""
    return wf.register_package(project, package(), f"{MODULE}:{attr}", actor)


def count(workdir: str, name: str) -> int:
    """How many times step `name` ran (each run appends a line to `<workdir>/<name>.log`)."""
    p = Path(workdir) / f"{name}.log"
    return len(p.read_text().splitlines()) if p.exists() else 0
