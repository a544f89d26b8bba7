"""A server that is not root (a team install's service user) sandboxes the same way, in a user
namespace of its own: no uid switch, no cgroup, the process limit counted inside the namespace.

Played here by running the supervisor as `nobody` (the test needs root to become it). The
run's argv is /bin/sh and only the system is bound: this machine's Python lives under /root,
out of nobody's reach, as a service user's Python would not be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.sandbox import Limits, Outcome, Sandbox, Spec, _bwrap, read_outcome
from tests._servers.apt import ensure_binary

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root"),
              pytest.mark.skipif(not Path("/usr/bin/python3").exists(),
                                 reason="needs a system Python that nobody can run")]

NOBODY = 65534


def _run_as_nobody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   request: pytest.FixtureRequest, script: str,
                   limits: Limits) -> tuple[Outcome | None, str]:
    ensure_binary("bwrap", "bubblewrap")
    monkeypatch.setattr(os, "geteuid", lambda: NOBODY)  # the server as it would see itself
    monkeypatch.setattr(_bwrap, "python_paths", lambda: ())
    sandbox = Sandbox(Settings(home=tmp_path / "home"), cgroups=False)
    sandbox.layout()  # made now, while these hold
    monkeypatch.undo()
    # Outside pytest's own temp dirs (0700, root's): the service user's own directory.
    run_dir = Path(tempfile.mkdtemp(prefix="modelyard-nobody-"))
    request.addfinalizer(lambda: shutil.rmtree(run_dir, ignore_errors=True))
    os.chown(run_dir, NOBODY, NOBODY)
    spec = Spec(argv=["/bin/sh", "-c", script], env={}, limits=limits,
                exit_file=run_dir / "run.exit")
    argv = sandbox.command(spec)
    os.chown(argv[-1], NOBODY, NOBODY)  # the plan, as the service user would have written it
    done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", "/usr/bin/python3", *argv[1:]],
                          capture_output=True, text=True, timeout=60, start_new_session=True,
                          check=False)
    return read_outcome(spec.exit_file), done.stdout + done.stderr


def test_an_unprivileged_server_confines_a_run_in_a_user_namespace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    outcome, out = _run_as_nobody(
        tmp_path, monkeypatch, request, "id -u; ls /proc | grep -c '^[0-9]'; touch /usr/x || echo ro; "
        "echo hi > /tmp/f && cat /tmp/f", Limits(memory_mb=300, processes=64, disk_mb=16))
    assert outcome == Outcome(code=0), out
    uid, processes, ro, wrote = out.split()[:4]
    assert uid == str(NOBODY) and int(processes) <= 4 and ro == "ro" and wrote == "hi"


def test_an_unprivileged_server_holds_the_process_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    # 40 sleepers against a limit of 16: the shell's forks fail past it.
    outcome, out = _run_as_nobody(
        tmp_path, monkeypatch, request, "for i in $(seq 40); do sleep 5 & done; wait",
        Limits(memory_mb=300, processes=16, disk_mb=16, wall_s=30))
    assert outcome is not None and outcome.code != 0, out
    assert "fork" in out.lower(), out
