"""A hostile editor's pipelines: whatever their definition or steps do, the server stays up,
never runs their code in its own process, never unpickles what they hand it, and says what
happened. Run under bubblewrap and with the sandbox off (the promises that rest on the process
boundary alone must hold either way)."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from modelyard.workflows.service import WorkflowService
from tests._servers.apt import ensure_binary
from tests.conftest import Team, bearer
from tests.workflows._packages import zipped

P = "/api/v1/projects/alpha/pipelines"

DEFINITION = """
import os, sys, time, threading
from modelyard.workflows import Pipeline, step

{prelude}

@step
def one() -> int:
    return 1

pipeline = Pipeline("hostile", [one])
"""

STEPS = """
import os, sys, threading
from modelyard.workflows import Pipeline, step

@step(cache=False)
def aborts() -> int:
    os.abort()

@step(cache=False)
def exits_hard() -> int:
    os._exit(3)

@step(cache=False)
def exits() -> int:
    sys.exit(1)

@step(timeout_s=1, cache=False)
def blocks() -> int:
    threading.Event().wait()
    return 0

pipeline = Pipeline("hostile-steps", [aborts, exits_hard, exits, blocks])
"""

PICKLE = """
from modelyard.workflows import Pipeline, kinds, step

class Planted:
    # Unpickling this calls open(path, "w"): whoever unpickles it creates the file.
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))

@step
def crafted(target: str):  # no annotation: the DSL lets it feed the gate
    return Planted(target)

pipeline = Pipeline("crafted", [crafted, kinds.gate("check", "crafted", "value", ">=", 1)],
                    params={"target": "/tmp/x"})
"""


@pytest.fixture(params=["off", "bubblewrap"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "bubblewrap":
        ensure_binary("bwrap", "bubblewrap")
    return Settings(home=tmp_path / "home", background=False,
                    security={"sandbox": "off" if request.param == "off" else "required"})  # type: ignore[arg-type]


def _upload(api: TestClient, team: Team, source: str, entry: str = "evil:pipeline",
            data: bytes | None = None) -> dict[str, object]:
    r = api.post(f"{P}/packages", params={"entry": entry},
                 content=zipped({"evil.py": source}) if data is None else data,
                 headers=bearer(team.editor))
    return {"status": r.status_code, **r.json()}


def _alive(api: TestClient, team: Team) -> None:
    assert api.get("/readyz").status_code == 200
    assert api.get(P, headers=bearer(team.viewer)).status_code == 200


@pytest.mark.parametrize(("prelude", "said"), [
    ("os.abort()", "killed by SIGABRT"),
    ("os._exit(3)", "exited with code 3"),
    ("sys.exit(1)", "it called sys.exit(1)"),
])
def test_a_definition_that_crashes_or_exits_is_a_400_and_the_server_lives(
        api: TestClient, team: Team, prelude: str, said: str) -> None:
    r = _upload(api, team, DEFINITION.format(prelude=prelude))
    assert r["status"] == 400, r
    assert said in r["error"]["message"]  # type: ignore[index]
    _alive(api, team)
    assert api.get(P, headers=bearer(team.viewer)).json() == []  # nothing stored


def test_a_definition_that_blocks_ends_at_the_load_timeout(
        api: TestClient, team: Team, wf: WorkflowService) -> None:
    wf.runner.load_timeout_s = 1.0  # type: ignore[union-attr]
    for prelude in ("time.sleep(10**6)", "threading.Event().wait()"):
        r = _upload(api, team, DEFINITION.format(prelude=prelude))
        assert r["status"] == 400, r
        assert "did not finish within 1s (the load timeout)" in r["error"]["message"]  # type: ignore[index]
    _alive(api, team)


def test_steps_that_crash_exit_or_block_fail_the_run_each_saying_how(
        api: TestClient, team: Team, wf: WorkflowService) -> None:
    assert _upload(api, team, STEPS)["status"] == 201
    started = api.post(f"{P}/hostile-steps/runs", json={}, headers=bearer(team.editor)).json()
    run = wf.wait("alpha", started["id"], 60)
    assert run.state == "failed"
    errors = {s.step: (s.state, s.error or "") for s in run.steps}
    assert errors["aborts"][0] == "failed" and "killed by SIGABRT" in errors["aborts"][1]
    assert "exited with code 3" in errors["exits_hard"][1]
    assert "called sys.exit(1)" in errors["exits"][1]
    assert "timed out after 1s" in errors["blocks"][1]
    _alive(api, team)


def test_a_crafted_pickle_from_a_step_never_runs_in_the_server(
        api: TestClient, team: Team, wf: WorkflowService, tmp_path: Path) -> None:
    target = tmp_path / "planted"
    assert _upload(api, team, PICKLE)["status"] == 201
    started = api.post(f"{P}/crafted/runs", json={"params": {"target": str(target)}},
                       headers=bearer(team.editor)).json()
    run = wf.wait("alpha", started["id"], 60)
    steps = {s.step: s for s in run.steps}
    assert steps["crafted"].state == "succeeded"
    assert steps["crafted"].output is None and len(steps["crafted"].output_ref or "") == 64
    # The built-in gate downstream is server code: it refuses the bytes instead of loading them.
    assert steps["check"].state == "failed"
    assert "takes JSON only" in (steps["check"].error or "")
    shown = api.get(f"{P}/runs/{run.id}", headers=bearer(team.viewer))
    assert shown.status_code == 200
    assert not target.exists()  # nobody unpickled it out here
    _alive(api, team)


def _zip_with_link() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("evil.py", DEFINITION.format(prelude=""))
        link = zipfile.ZipInfo("secrets.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    return out.getvalue()


def _tar_with(kind: bytes, target: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        body = DEFINITION.format(prelude="").encode()
        info = tarfile.TarInfo("evil.py")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("secrets.py")
        link.type, link.linkname = kind, target
        t.addfile(link)
    return out.getvalue()


@pytest.mark.parametrize("settings", ["off"], indirect=True)  # refused before any sandbox
@pytest.mark.parametrize("kind", ["zip symlink", "tar symlink", "tar hardlink"])
def test_a_package_with_a_link_is_refused_at_register(
        api: TestClient, team: Team, kind: str) -> None:
    data = {"zip symlink": _zip_with_link, "tar symlink": lambda: _tar_with(tarfile.SYMTYPE,
                                                                          "/etc/passwd"),
            "tar hardlink": lambda: _tar_with(tarfile.LNKTYPE, "evil.py")}[kind]()
    r = _upload(api, team, "", data=data)
    assert r["status"] == 400, r
    assert "secrets.py" in r["error"]["message"] and "link" in r["error"]["message"]  # type: ignore[index]
    assert api.get(P, headers=bearer(team.viewer)).json() == []


EDITED = """
from modelyard.workflows import Pipeline, step

@step
def version() -> str:
    return "{v}"

pipeline = Pipeline("edited", [version])
"""


@pytest.mark.parametrize("settings", ["off"], indirect=True)
def test_an_edited_package_runs_its_new_code_and_never_the_old_cache(
        api: TestClient, team: Team, wf: WorkflowService) -> None:
    def output(run_id: str) -> tuple[str, str, str | None]:
        run = wf.wait("alpha", run_id, 60)
        assert run.state == "succeeded", run.error
        return run.steps[0].output, run.steps[0].state, run.package_digest

    def start() -> str:
        return str(api.post(f"{P}/edited/runs", json={},
                            headers=bearer(team.editor)).json()["id"])

    v1 = _upload(api, team, EDITED.format(v="v1"))
    assert output(start()) == ("v1", "succeeded", v1["package_digest"])
    queued = start()  # started on v1; the engine has not picked it up yet
    v2 = _upload(api, team, EDITED.format(v="v2"))
    assert v2["package_digest"] != v1["package_digest"]
    assert v2["definition_hash"] != v1["definition_hash"]
    # A run runs the code it was started on, whatever was registered since...
    assert output(queued) == ("v1", "cached", v1["package_digest"])
    # ...and a new run runs the new code: the old result is not reused for it.
    assert output(start()) == ("v2", "succeeded", v2["package_digest"])
    assert output(start()) == ("v2", "cached", v2["package_digest"])
    versions = api.get(f"{P}/edited/versions", headers=bearer(team.viewer)).json()
    assert [v["hash"] for v in versions] == [v1["definition_hash"], v2["definition_hash"]]
    assert [v["current"] for v in versions] == [False, True]


HOG = """
from modelyard.workflows import Pipeline, step

@step(memory_mb=128, cache=False)
def hog() -> int:
    held = b"x" * (1024 * 1024 * 1024)  # touched pages, not a lazy allocation
    return len(held)

pipeline = Pipeline("hog", [hog])
"""


@pytest.mark.parametrize("settings", ["bubblewrap"], indirect=True)
def test_a_step_past_its_memory_limit_fails_naming_the_limit(
        api: TestClient, team: Team, wf: WorkflowService) -> None:
    assert _upload(api, team, HOG)["status"] == 201
    started = api.post(f"{P}/hog/runs", json={}, headers=bearer(team.editor)).json()
    run = wf.wait("alpha", started["id"], 60)
    assert run.state == "failed"
    error = run.steps[0].error or ""
    assert "memory limit" in error and "128 MB" in error, error
    _alive(api, team)
