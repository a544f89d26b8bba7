"""When user code may run: `auto` without bubblewrap runs it for a single user only,
`required` never runs it without bubblewrap, `off` runs it unconfined and says so."""

from __future__ import annotations

import io
import logging
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import FailedPrecondition
from modelyard.core.settings import Settings
from modelyard.sandbox import Limits, Outcome, Sandbox, Spec
from modelyard.sandbox._probe import probe
from modelyard.sdk.client import Client
from modelyard.server.app import create_app

REFUSAL = "install bubblewrap or set MODELYARD_SECURITY__SANDBOX=off"


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without bubblewrap: nothing on PATH (the probe is asked again)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    probe.cache_clear()
    yield
    probe.cache_clear()


def _code(client: Client) -> dict[str, str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "print('hi')\n")
    return {"digest": client.training.upload_code(buf.getvalue())["digest"],
            "entrypoint": "train.py"}


def test_auto_without_bubblewrap_runs_code_for_one_user_and_refuses_it_for_two(
        no_bwrap: None, api: TestClient, client: Client, admin_token: str) -> None:
    ready = api.get("/readyz").json()["details"]["sandbox"]
    assert ready["mode"] == "off" and "not installed" in ready["detail"]
    code = _code(client)
    queued = client.training.submit(code=code)  # the only user: it may run
    made = api.post("/api/v1/users", json={"name": "eve"},
                    headers={"Authorization": f"Bearer {admin_token}"})
    assert made.status_code == 201
    with pytest.raises(FailedPrecondition, match=REFUSAL):
        client.training.submit(code=code)
    # The job queued before the second user came is refused at launch, with the same words.
    platform = api.app.state.platform  # type: ignore[attr-defined]
    platform.training.tick()
    failed = client.training.get(queued["id"])
    assert failed["state"] == "failed" and REFUSAL in failed["message"]


def test_required_refuses_user_code_without_bubblewrap(no_bwrap: None, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", background=False)
    settings.security.sandbox = "required"
    with TestClient(create_app(settings)) as api:
        token = settings.resolved_admin_token_file.read_text().strip()
        client = Client(token=token, project="alpha", http=api)
        client.create_project("alpha")
        with pytest.raises(FailedPrecondition, match="MODELYARD_SECURITY__SANDBOX=required"):
            client.training.submit(code=_code(client))
        assert api.get("/readyz").json()["details"]["sandbox"]["mode"] == "off"


def test_off_runs_code_unconfined_and_warns_at_start_and_in_readyz(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=tmp_path / "home", background=True)
    settings.security.sandbox = "off"
    with caplog.at_level(logging.WARNING, "modelyard.sandbox"), \
            TestClient(create_app(settings)) as api:
        sandbox = api.app.state.platform.training.sandbox  # type: ignore[attr-defined]
        ready = api.get("/readyz").json()["details"]["sandbox"]
    assert (ready["mode"], ready["setting"]) == ("off", "off")
    assert "unconfined" in ready["detail"]
    assert any("without a sandbox" in r.getMessage() for r in caplog.records)
    secret = tmp_path / "outside"
    secret.write_text("reachable")
    out = tmp_path / "out"
    with open(out, "wb") as f:
        outcome = sandbox.run(Spec(argv=[sys.executable, "-c", f"print(open({str(secret)!r}).read())"],
                                   env={}, limits=Limits(), exit_file=tmp_path / "run.exit"), f, f)
    assert outcome == Outcome(code=0) and "reachable" in out.read_text()


def test_with_bubblewrap_every_mode_but_off_confines(tmp_path: Path) -> None:
    for setting in ("auto", "required"):
        settings = Settings(home=tmp_path / "home")
        settings.security.sandbox = setting  # type: ignore[assignment]
        sandbox = Sandbox(settings, count_users=lambda: 5)
        assert sandbox.mode == "bubblewrap"
        sandbox.check_allowed()  # many users, but confined: allowed
