"""Install a Debian package on demand, so tests that need a real server bring it themselves."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_binary(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    apt_install(package)
    found = shutil.which(binary)
    if not found:
        raise RuntimeError(f"installed {package} but {binary} is still not on PATH")
    return found


def apt_install(package: str) -> None:
    """`apt-get install` Debian's `package` (refreshing the package lists when they lack it)."""
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"apt-get is not available: install {package}")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True,
                            check=False)
    if "Candidate: (none)" in policy.stdout or "Candidate:" not in policy.stdout:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env,
                       capture_output=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package],
                   check=True, env=env, capture_output=True)
