"""Headless Chromium for the console tests: Debian's package, driven by Playwright's Python API.

Never `playwright install`: the browser is the distribution's `chromium`, installed with apt when
it is missing, and the console's npm assets are built when they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when absent; raises RuntimeError saying why not."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise RuntimeError("no /usr/bin/chromium and no apt-get: install Debian's `chromium`")
    policy = _run("apt-cache", "policy", "chromium").stdout
    if "Candidate:" not in policy or "Candidate: (none)" in policy:
        _run("apt-get", "update")  # the package lists are empty or stale
    done = _run("apt-get", "install", "-y", "--no-install-recommends", "chromium")
    if done.returncode != 0 or not CHROMIUM.exists():
        raise RuntimeError(f"`apt-get install -y chromium` failed: {done.stderr[-1500:]}")
    return CHROMIUM
