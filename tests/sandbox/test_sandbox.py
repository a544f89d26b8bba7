"""The sandbox itself, run directly: what code inside it sees, and how each limit ends it.

Each test runs a few lines of Python in a real bubblewrap sandbox (`Sandbox.run`) and reads
what it printed; the attacks through a live server are in tests/training/test_job_attacks.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from modelyard.core.settings import Settings
from modelyard.sandbox import Limits, Outcome, Sandbox, Spec, read_outcome
from tests._servers.apt import ensure_binary

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "src"  # modelyard's source dir, bound read-only
SMALL = Limits(memory_mb=300, processes=64, open_files=256, wall_s=30, disk_mb=64)


@pytest.fixture(scope="module", autouse=True)
def _bwrap() -> None:
    ensure_binary("bwrap", "bubblewrap")


def _run(sandbox: Sandbox, tmp_path: Path, code: str, limits: Limits = SMALL,
         **spec: object) -> tuple[Outcome, str]:
    """Runs `code` in the sandbox; its outcome and everything it wrote."""
    out = tmp_path / "out.log"
    with open(out, "wb") as f:
        outcome = sandbox.run(Spec(argv=[sys.executable, "-c", code], env=dict(spec.pop(
            "env", {})), limits=limits, exit_file=tmp_path / "run.exit", name=tmp_path.name,
            **spec), f, f)  # type: ignore[arg-type]
    return outcome, out.read_text()


def _report(text: str) -> dict[str, object]:
    return json.loads(text.strip().splitlines()[-1])  # type: ignore[no-any-return]


PROBE = r"""
import json, os, sys
def attempt(fn):
    try:
        return ("ok", fn())
    except OSError as e:
        return ("denied", type(e).__name__)
paths = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
print(json.dumps({
    "uid": os.getuid(),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "env": sorted(os.environ),
    "cwd": os.getcwd(),
    "read": {k: attempt(lambda p=p: open(p, "rb").read(64).decode("latin-1"))
             for k, p in paths.get("read", {}).items()},
    "list": {k: attempt(lambda p=p: sorted(os.listdir(p))) for k, p in paths.get("list", {}).items()},
    "write": {k: attempt(lambda p=p: open(p, "w").write("x")) for k, p in paths.get("write", {}).items()},
    "kill": attempt(lambda: os.kill(int(paths["kill"]), 15)) if "kill" in paths else None,
}))
"""


def _probe(sandbox: Sandbox, tmp_path: Path, paths: dict[str, object],
           **spec: object) -> dict[str, object]:
    code = PROBE.replace("sys.argv[1]", repr(json.dumps(paths))).replace(
        "len(sys.argv) > 1", "True")
    outcome, text = _run(sandbox, tmp_path, code, **spec)
    assert outcome == Outcome(code=0), text
    return _report(text)


def test_the_code_sees_its_own_processes_an_empty_work_dir_and_an_allow_listed_env(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_BLOBS__S3_SECRET_ACCESS_KEY", "server-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "server-secret")
    sandbox = Sandbox(Settings(home=tmp_path / "home"))
    seen = _probe(sandbox, tmp_path, {"list": {"work": "/tmp"}, "kill": os.getpid()},
                  env={"MODELYARD_JOB_ID": "job_1"})
    assert max(seen["pids"]) < 10  # type: ignore[type-var, arg-type]  # bwrap's init, python
    env = set(seen["env"])  # type: ignore[call-overload]
    assert "MODELYARD_JOB_ID" in env and not any("SECRET" in k for k in env)
    assert env <= {"HOME", "TMPDIR", "PWD", "PYTHONUNBUFFERED", "MODELYARD_JOB_ID", "PATH",
                   "LANG", "LANGUAGE", "TZ", "HF_HUB_OFFLINE", "OPENBLAS_CORETYPE",
                   "OPENBLAS_L2_SIZE"} | {k for k in env if k.startswith("LC_")}
    # Empty, but for the way to a Python environment that lives under /tmp (a CI checkout).
    under_tmp = sorted({Path(p).relative_to("/tmp").parts[0] for p in sandbox.layout().ro_paths
                        if p.startswith("/tmp/")})
    assert seen["cwd"] == "/tmp" and seen["list"] == {"work": ["ok", under_tmp]}
    assert seen["kill"] == ["denied", "ProcessLookupError"]  # the server is not in its world
    if os.geteuid() == 0:
        assert seen["uid"] != 0  # a uid of its own, not root


def test_the_system_and_python_are_read_only(tmp_path: Path) -> None:
    sandbox = Sandbox(Settings(home=tmp_path / "home"))
    seen = _probe(sandbox, tmp_path, {"write": {
        "usr": "/usr/lib/modelyard-was-here", "etc": "/etc/passwd",
        "venv": f"{sys.prefix}/pwned.pth", "source": str(SRC / "modelyard" / "pwned.py")}})
    assert {k: v[0] for k, v in seen["write"].items()} == dict.fromkeys(  # type: ignore[union-attr]
        ("usr", "etc", "venv", "source"), "denied")


def test_the_data_dir_database_and_blobs_stay_hidden_even_under_a_bound_path(
        tmp_path: Path) -> None:
    # A data dir inside modelyard's source tree, which every run sees read-only.
    home = SRC / f"test-home-{os.getpid()}"
    try:
        (home / "blobs" / "datasets" / "other.lance").mkdir(parents=True)
        (home / "blobs" / "datasets" / "other.lance" / "data").write_text("other project's rows")
        (home / "blobs" / "datasets" / "mine.lance").mkdir(parents=True)
        (home / "blobs" / "datasets" / "mine.lance" / "data").write_text("my rows")
        (home / "admin-token").write_text("admin-secret")
        (home / "modelyard.db").write_text("database")
        db_elsewhere = SRC / f"test-{os.getpid()}.db"  # a database outside the data dir
        db_elsewhere.write_text("database")
        settings = Settings(home=home, database_url=f"sqlite:///{db_elsewhere}")
        mine = str(home / "blobs" / "datasets" / "mine.lance")
        seen = _probe(Sandbox(settings), tmp_path, {
            "read": {"token": str(home / "admin-token"), "db": str(home / "modelyard.db"),
                     "db_elsewhere": str(db_elsewhere),
                     "other": str(home / "blobs" / "datasets" / "other.lance" / "data"),
                     "mine": f"{mine}/data"},
            "list": {"datasets": str(home / "blobs" / "datasets")},
            "write": {"mine": f"{mine}/data"}}, ro_binds={mine: mine})
    finally:
        db_elsewhere.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)
    read = seen["read"]
    assert read["mine"] == ["ok", "my rows"]  # type: ignore[index]  # its own bind shows
    for what in ("token", "db", "other", "db_elsewhere"):  # each is 0644: only masks hide it
        assert read[what][0] == "denied", what  # type: ignore[index]
    assert seen["list"] == {"datasets": ["ok", ["mine.lance"]]}
    assert seen["write"]["mine"][0] == "denied"  # type: ignore[index]


def test_a_work_dir_of_the_callers_is_the_runs_cwd_and_keeps_what_it_wrote(
        tmp_path: Path) -> None:
    work = tmp_path / "step-work"
    work.mkdir()
    (work / "input.txt").write_text("in")
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path,
                         "import os; open('output.txt', 'w').write(open('input.txt').read() + "
                         "'-out'); print(os.getcwd())", work_dir=work)
    assert outcome == Outcome(code=0), text
    assert text.strip() == str(work) and (work / "output.txt").read_text() == "in-out"


def test_past_its_memory_limit_a_run_is_ended_with_that_reason(tmp_path: Path) -> None:
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path,
                         "x = []\nwhile True: x.append(bytearray(16 << 20))")
    assert outcome.reason == "exceeded its memory limit (300 MB)", text
    assert outcome.limit == "memory_mb" and outcome.code != 0


def test_a_fork_bomb_is_ended_at_its_process_limit(tmp_path: Path) -> None:
    bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path, bomb)
    assert outcome.reason == "exceeded its process limit (64)", text


def test_filling_the_work_dir_fails_the_run_with_that_reason(tmp_path: Path) -> None:
    fill = "f = open('big', 'wb')\nwhile True: f.write(b'x' * (1 << 20))"
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path, fill)
    assert "No space left on device" in text
    assert outcome.reason == "filled its work dir (64 MB)", text


def test_a_run_past_its_wall_time_is_ended(tmp_path: Path) -> None:
    limits = Limits(memory_mb=300, processes=64, wall_s=0.5, disk_mb=64)
    outcome, _ = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path,
                      "import time; time.sleep(60)", limits)
    assert (outcome.reason, outcome.limit) == ("ran past its wall time (0.5 s)", "wall_s")


def test_open_files_are_limited(tmp_path: Path) -> None:
    code = ("import os\nn = 0\ntry:\n    while True: os.open('/dev/null', os.O_RDONLY); n += 1\n"
            "except OSError as e: print(e.strerror, n)")
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home")), tmp_path, code)
    assert outcome == Outcome(code=0)
    assert "Too many open files" in text and int(text.split()[-1]) < 256


@pytest.mark.parametrize("code,reason", [
    ("import time\nx = []\nwhile True: x.append(bytearray(16 << 20)); time.sleep(0.01)",
     "exceeded its memory limit (300 MB)"),
    ("import os, time\nwhile True:\n    try: os.fork()\n    except OSError: time.sleep(1)",
     "exceeded its process limit (64)"),
], ids=["memory", "processes"])
def test_without_cgroups_the_watchdog_ends_the_run(tmp_path: Path, code: str,
                                                   reason: str) -> None:
    outcome, text = _run(Sandbox(Settings(home=tmp_path / "home"), cgroups=False), tmp_path,
                         code)
    assert outcome.reason == reason, text


def test_an_exit_code_and_a_signal_come_back(tmp_path: Path) -> None:
    sandbox = Sandbox(Settings(home=tmp_path / "home"))
    assert _run(sandbox, tmp_path, "raise SystemExit(7)")[0] == Outcome(code=7)
    assert _run(sandbox, tmp_path, "import os; os.kill(os.getpid(), 9)")[0] == Outcome(code=137)


def test_an_old_plain_integer_exit_file_still_reads(tmp_path: Path) -> None:
    (tmp_path / "old.exit").write_text("3\n")
    assert read_outcome(tmp_path / "old.exit") == Outcome(code=3)
    assert read_outcome(tmp_path / "missing.exit") is None


def test_no_secret_is_on_a_command_line(tmp_path: Path) -> None:
    sandbox = Sandbox(Settings(home=tmp_path / "home"))
    spec = Spec(argv=[sys.executable, "-c", "pass"], env={"MODELYARD_TOKEN": "tok-secret"},
                limits=SMALL, exit_file=tmp_path / "run.exit")
    argv = sandbox.command(spec)
    assert not any("tok-secret" in a for a in argv)
    plan = Path(argv[-1])
    assert plan.stat().st_mode & 0o777 == 0o600  # the plan holds it; the supervisor deletes it
    plan.unlink()


def test_the_public_surface_is_exactly_the_declared_one() -> None:
    import modelyard.sandbox

    assert sorted(modelyard.sandbox.__all__) == ["Limits", "Outcome", "Sandbox", "Spec",
                                                 "read_outcome"]


def test_a_python_environment_under_tmp_shows_through_the_private_tmp(tmp_path: Path) -> None:
    # A venv or checkout under /tmp (pytest's tmp_path is there too) is bound over the run's
    # private /tmp, not hidden beneath it: before, every job of such a server failed at exec.
    env_dir = tmp_path / "venv-under-tmp"
    env_dir.mkdir()
    (env_dir / "marker.txt").write_text("environment")
    sandbox = Sandbox(Settings(home=tmp_path / "home"))
    layout = sandbox.layout()
    sandbox._layout = dataclasses.replace(layout, masks=(), ro_paths=(  # noqa: SLF001
        *layout.ro_paths, str(env_dir)))
    seen = _probe(sandbox, tmp_path, {"read": {"env": str(env_dir / "marker.txt")},
                                      "write": {"env": str(env_dir / "x")}})
    assert seen["read"] == {"env": ["ok", "environment"]}
    assert seen["write"]["env"][0] == "denied"  # type: ignore[index]
