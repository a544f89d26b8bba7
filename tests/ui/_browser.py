"""Headless Chromium for the console tests: Debian's package, driven by Playwright's Python API.

Never `playwright install`: the browser is the distribution's `chromium`, installed with apt when
it is missing, and the console's npm assets are built when they are missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests._servers.apt import apt_install

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when absent; raises RuntimeError saying why not."""
    if not CHROMIUM.exists():
        try:
            apt_install("chromium")
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"`apt-get install -y chromium` failed: {e.stderr[-1500:]!r}") from e
    if not CHROMIUM.exists():
        raise RuntimeError(f"installed chromium but {CHROMIUM} is missing")
    return CHROMIUM
