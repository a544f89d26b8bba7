"""An editor's hostile job, through a live server: it reaches nothing it should not, every limit
ends it with a reason that names the limit, and the server keeps answering.

The editor (eve, editor of alpha) knows the exact paths it is after: the admin token, the
database, project beta's job logs, code package and dataset files, and the server's pid. With
MODELYARD_SECURITY__SANDBOX=off every read here succeeds and the signal kills the server (the
test process); the limits are simply absent. With the sandbox every one fails.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.training._live import admin_client

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CANARY = "MODELYARD_TEST_CANARY"  # in the server's environment only

ATTACK = r'''
import json, os, signal
from modelyard import runtime

ctx = runtime.context()
t = ctx.hyperparameters

def attempt(fn):
    try:
        return "ok: " + repr(fn())[:80]
    except OSError as e:
        return "denied: " + type(e).__name__

def server_env():
    # Walk every process this job can see, for the server's environment or command line.
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for part in ("environ", "cmdline"):
                try:
                    # The value in two parts: whole, it would be in this job's own environment.
                    if "".join(t["canary"]).encode() in open(f"/proc/{pid}/{part}", "rb").read():
                        found.append(pid)
                except OSError:
                    pass
    if found:
        return found
    raise FileNotFoundError("no process with the server's environment")

result = {
    "admin token": attempt(lambda: open(t["admin_token"]).read()),
    "database": attempt(lambda: open(t["database"], "rb").read(16)),
    "server env (proc walk)": attempt(server_env),
    "server env (its pid)": attempt(lambda: open(f"/proc/{t['server_pid']}/environ", "rb").read()),
    "other job logs (list)": attempt(lambda: os.listdir(t["log_dir"])),
    "other job log": attempt(lambda: open(t["other_log"]).read()),
    "other code blob": attempt(lambda: open(t["other_blob"], "rb").read(16)),
    "other dataset": attempt(lambda: os.listdir(t["other_dataset"])),
    "blob root": attempt(lambda: sorted(os.listdir(t["blob_root"]))),
    "signal the server": attempt(lambda: os.kill(t["server_pid"], signal.SIGTERM)),
    "own dataset": attempt(lambda: os.listdir(t["own_dataset"])),
}
print("ATTACK " + json.dumps(result), flush=True)
'''

MEMORY = "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
FILL_DISK = "f = open('fill', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20))\n"


def _package(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    os.environ[CANARY] = "server-only"  # the server runs in this process: its environment
    settings = Settings(home=tmp_path_factory.mktemp("attacks") / "home", background=True)
    settings.training.capacity_cpus = 2
    try:
        with live_server(settings) as s:
            yield s
    finally:
        os.environ.pop(CANARY, None)


@pytest.fixture(scope="module")
def admin(server: Settings) -> Iterator[Client]:
    yield from admin_client(server)


@pytest.fixture(scope="module")
def eve(server: Settings, admin: Client) -> Iterator[Client]:
    """An editor of alpha, nothing more."""
    token = admin.create_user("eve")["token"]
    admin.set_member("alpha", "eve", "editor")
    with Client(server.resolved_public_url, token=token, project="alpha") as c:
        yield c


@pytest.fixture(scope="module")
def beta(server: Settings, admin: Client) -> dict[str, Any]:
    """Project beta's job (its log), code package and dataset: what eve is after."""
    admin.create_project("beta")
    token = server.resolved_admin_token_file.read_text().strip()
    with Client(server.resolved_public_url, token=token, project="beta") as b:
        code = b.training.upload_code(_package({"train.py": "print('beta secret')\n"}))
        job = b.training.submit(code={"digest": code["digest"], "entrypoint": "train.py"})
        assert b.training.wait(job["id"], timeout=60)["state"] == "succeeded"
        b.datasets.import_builtin("digits", "sklearn:digits")
        snap = b.datasets.snapshot("digits")
    digest = code["digest"]
    return {"job": job["id"], "blob": str(server.resolved_blob_root / "cas" / digest[:2] /
                                          digest[2:4] / digest), "dataset": snap["uri"]}


def _run(eve: Client, code: str, **submit: Any) -> dict[str, Any]:
    digest = eve.training.upload_code(_package({"train.py": code}))["digest"]
    return eve.training.submit(code={"digest": digest, "entrypoint": "train.py"}, **submit)


def _log(client: Client, job_id: str) -> str:
    return "".join(client.training.logs(job_id))


def test_an_editors_job_reaches_no_secret_no_other_project_and_not_the_server(
        server: Settings, admin: Client, eve: Client, beta: dict[str, Any]) -> None:
    assert Path(beta["blob"]).exists() and Path(beta["dataset"]).exists()  # they are there
    eve.datasets.import_builtin("digits", "sklearn:digits")
    own = eve.datasets.snapshot("digits")
    logs = server.home / "training" / "logs"
    targets = {
        "canary": ["server-", "only"], "admin_token": str(server.resolved_admin_token_file),
        "database": str(server.home / "modelyard.db"), "server_pid": os.getpid(),
        "log_dir": str(logs), "other_log": str(logs / f"{beta['job']}.log"),
        "other_blob": beta["blob"], "other_dataset": beta["dataset"],
        "blob_root": str(server.resolved_blob_root), "own_dataset": own["uri"],
    }
    job = _run(eve, ATTACK, hyperparameters=targets, dataset_snapshot=own["id"])
    done = eve.training.wait(job["id"], timeout=60)
    log = _log(eve, job["id"])
    assert done["state"] == "succeeded", log
    seen = json.loads(log.split("ATTACK ", 1)[1].splitlines()[0])
    assert seen.pop("own dataset").startswith("ok: ")  # its snapshot, bound read-only
    blob_root = seen.pop("blob root")  # only the path leading to its own snapshot shows
    assert blob_root.startswith("denied") or blob_root == "ok: ['datasets']", blob_root
    assert all(v.startswith("denied: ") for v in seen.values()), seen
    assert "server-only" not in log and "beta secret" not in log
    assert admin.training.get(job["id"])["state"] == "succeeded"  # the server still answers


@pytest.mark.parametrize("code,resources,reason", [
    (MEMORY, {"memory_mb": 300}, "exceeded its memory limit (300 MB)"),
    (FORK_BOMB, {"processes": 64}, "exceeded its process limit (64)"),
    (FILL_DISK, {"disk_mb": 64}, "filled its work dir (64 MB)"),
], ids=["memory", "processes", "disk"])
def test_a_job_past_a_limit_fails_with_a_reason_naming_it(
        admin: Client, eve: Client, code: str, resources: dict[str, int], reason: str) -> None:
    job = _run(eve, code, resources={"cpu": 0.5, **resources}, timeout_s=60)
    done = eve.training.wait(job["id"], timeout=90)
    assert done["state"] == "failed"
    assert reason in done["message"], (done["message"], _log(eve, job["id"])[-2000:])
    assert reason in _log(eve, job["id"])  # the user sees it in the job's log too
    assert admin.training.get(job["id"])["state"] == "failed"  # the server still answers


def test_an_hpo_trial_runs_sandboxed(admin: Client) -> None:
    trial = ("import os\nfrom modelyard import runtime\nctx = runtime.context()\n"
             f"print('canary seen:', {CANARY!r} in os.environ)\n"
             "print('processes seen:', len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
             "runtime.log_metrics(0, score=ctx.hyperparameters['x'])\n")
    digest = admin.training.upload_code(_package({"trial.py": trial}))["digest"]
    admin.hpo.create_from_spec({
        "name": "sandboxed", "code": {"digest": digest, "entrypoint": "trial.py"},
        "search_space": {"x": {"type": "float", "low": 0, "high": 1}},
        "objective": {"metric": "score", "direction": "maximize"}, "n_trials": 1,
        "pruner": {"kind": "none"}, "resources": {"cpu": 0.5}})
    done = admin.hpo.wait("sandboxed", timeout=120)
    trials = admin.hpo.trials("sandboxed")
    assert done["state"] == "completed" and trials[0]["state"] == "completed", trials
    log = _log(admin, trials[0]["job_id"])
    assert "canary seen: False" in log
    assert int(log.split("processes seen: ")[1].split()[0]) <= 3  # bwrap's init, the trial
