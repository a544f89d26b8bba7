"""The code stays lint- and type-clean: `make lint` (ruff, then mypy on src/) as part of every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def test_ruff_finds_nothing() -> None:
    done = _run(str(BIN / "ruff"), "check", "--no-cache", "src", "tests", "bench")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package(tmp_path: Path) -> None:
    done = _run(str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy"))
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout[-5000:]
