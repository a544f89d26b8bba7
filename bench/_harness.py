"""What every benchmark shares: machine facts, the result file, throwaway venvs for peers.

A result is one JSON object per benchmark in `bench/results/<name>.json` (format in DESIGN.md):
the headline `value` is measured by the script named in `script`, never typed in, and every raw
figure it came from sits beside it in `figures` (and per peer in `peers`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PEERS_HOME = Path(os.environ.get("MODELYARD_PEERS_HOME", "/tmp/modelyard-peers"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10,
                               check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty.strip() else "")


def machine_facts() -> dict[str, Any]:
    """Facts that make a figure comparable: cores, CPU, memory, interpreter, library versions."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "modelyard": _version("modelyard"),
        "git_commit": _git_commit(),
        # Other work on the machine skews latency figures; record how busy it was.
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, like numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def write_result(
    name: str,
    goal: str,
    metric: str,
    value: float,
    target: float,
    higher_is_better: bool,
    figures: dict[str, Any],
    peers: dict[str, Any],
    script: str,
    results: Path | None = None,
) -> Path:
    """Write `<results>/<name>.json` (default bench/results/) and return its path; prints a
    one-line summary."""
    met = value >= target if higher_is_better else value <= target
    result = {
        "name": name,
        "goal": goal,
        "metric": metric,
        "value": value,
        "target": target,
        "higher_is_better": higher_is_better,
        "met": met,
        "figures": figures,
        "peers": peers,
        "machine": machine_facts(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": Path(script).resolve().relative_to(ROOT).as_posix()
        if Path(script).resolve().is_relative_to(ROOT) else script,
    }
    folder = results or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    sign = ">=" if higher_is_better else "<="
    print(f"{name}: {metric} = {value:.4g} (target {sign} {target}) "
          f"{'met' if met else 'NOT met'} -> "
          f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def make_peer_venv(name: str, packages: Sequence[str]) -> Path:
    """A throwaway venv under /tmp/modelyard-peers/<name> with `packages` installed by pip.

    Peers (MLflow, LitServe, Ray Serve...) never share modelyard's environment, so their pins
    cannot change what is measured. The venv is reused while the package list is unchanged.
    Returns the venv's python.
    """
    venv = PEERS_HOME / name
    python = venv / "bin" / "python"
    wanted = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()
    stamp = venv / ".modelyard-peer-stamp"
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return python
    PEERS_HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if packages:
        subprocess.run([*pip, *packages], check=True)
    stamp.write_text(wanted + "\n")
    return python
