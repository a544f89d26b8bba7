"""REST, SDK and CLI of the workflow manager, and who may do what."""

from __future__ import annotations

import io
import tarfile
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from modelyard.core.ids import utcnow
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.workflows.service import WorkflowService
from tests._servers.live import live_server
from tests.conftest import Team, bearer
from tests.workflows._packages import MODULE, SOURCE, count, files, package

P = "/api/v1/projects/alpha/pipelines"


def _upload(api: TestClient, token: str, attr: str, data: bytes | None = None,
            **params: str) -> Response:
    return api.post(f"{P}/packages", params={"entry": f"{MODULE}:{attr}", **params},
                    content=package() if data is None else data, headers=bearer(token))


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, data in reversed(list(members.items())):  # another order, other metadata
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_register_stores_the_definition_under_its_package_hash(
        api: TestClient, team: Team) -> None:
    r = _upload(api, team.editor, "cached")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "cached" and len(body["definition_hash"]) == 64
    assert body["source"] == "package" and body["entry"] == f"{MODULE}:cached"
    assert len(body["package_digest"]) == 64
    assert {s["name"]: s["inputs"] for s in body["steps"]}["d"] == {"b": "b", "c": "c"}
    # The same files packed again, as a tar.gz in another order: the same package and version
    again = _upload(api, team.editor, "cached", _tar_gz(files()))
    assert again.status_code == 201, again.text
    assert again.json()["package_digest"] == body["package_digest"]
    assert again.json()["definition_hash"] == body["definition_hash"]
    versions = api.get(f"{P}/cached/versions", headers=bearer(team.viewer)).json()
    assert [v["hash"] for v in versions] == [body["definition_hash"]]


def test_registering_an_invalid_pipeline_is_a_400_naming_the_steps(
        api: TestClient, team: Team) -> None:
    for attr, steps in (("cyclic", ["p", "q"]), ("missing_input", ["second"]),
                        ("mismatched", ["consume", "produce"])):
        r = _upload(api, team.editor, attr)
        assert r.status_code == 400, attr
        assert r.json()["error"]["code"] == "invalid_argument"
        assert r.json()["error"]["details"]["steps"] == steps, attr
    r = _upload(api, team.editor, "nothing_here")
    assert r.status_code == 400 and "nothing_here" in r.json()["error"]["message"]
    r = api.post(f"{P}/packages", params={"entry": "nowhere:pipeline"}, content=package(),
                 headers=bearer(team.editor))
    assert r.status_code == 400 and "not in the code package" in r.json()["error"]["message"]
    assert api.get(P, headers=bearer(team.viewer)).json() == []


def test_a_module_path_source_is_refused_with_how_to_upload_a_package(
        api: TestClient, team: Team) -> None:
    for source in ("os:abort", "tests.workflows.package.wfpipes:fanout", "no such thing"):
        r = api.post(P, json={"source": source}, headers=bearer(team.editor))
        assert r.status_code == 400, source
        message = r.json()["error"]["message"]
        assert "not a built-in" in message and "pipelines/packages?entry=" in message
    assert api.get(P, headers=bearer(team.viewer)).json() == []
    assert api.get("/readyz").status_code == 200  # os:abort was never called


def test_a_viewer_can_read_but_not_run_or_cancel(api: TestClient, team: Team) -> None:
    assert _upload(api, team.viewer, "fanout").status_code == 403
    _upload(api, team.editor, "fanout")
    assert api.get(P, headers=bearer(team.viewer)).status_code == 200
    r = api.post(f"{P}/fanout/runs", json={}, headers=bearer(team.viewer))
    assert r.status_code == 403
    assert api.get(f"{P}/runs", headers=bearer(team.viewer)).json() == []
    started = api.post(f"{P}/fanout/runs", json={}, headers=bearer(team.editor))
    assert started.status_code == 202
    cancel = api.post(f"{P}/runs/{started.json()['id']}/cancel", headers=bearer(team.viewer))
    assert cancel.status_code == 403
    assert api.get(P, headers=bearer(team.outsider)).status_code == 404  # not even its existence


def test_unknown_run_parameters_are_rejected(api: TestClient, team: Team) -> None:
    _upload(api, team.editor, "fanout")
    r = api.post(f"{P}/fanout/runs", json={"params": {"m": 3}}, headers=bearer(team.editor))
    assert r.status_code == 400
    assert "its parameters are: n" in r.json()["error"]["message"]


def test_sdk_registers_a_folder_and_runs_its_pipeline(client: Client) -> None:
    client.workflows.register_package(SOURCE, f"{MODULE}:fanout")
    run = client.workflows.run("fanout", {"n": 3}, wait=True, timeout_s=60)
    assert run["state"] == "succeeded"
    assert {s["step"]: s["output"] for s in run["steps"]}["total"] == 14
    assert [r["id"] for r in client.workflows.list_runs("fanout")] == [run["id"]]


def test_schedules_crud_and_bad_cron(client: Client) -> None:
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    t = client.workflows.schedule("fanout", "*/5 * * * *", params={"n": 2})
    assert t["kind"] == "cron" and t["next_fire_at"]
    assert [s["id"] for s in client.workflows.list_schedules()] == [t["id"]]
    off = client.workflows.update_schedule(t["id"], enabled=False)
    assert off["enabled"] is False
    client.workflows.delete_schedule(t["id"])
    assert client.workflows.list_schedules("fanout") == []
    try:
        client.workflows.schedule("fanout", "every day")
    except Exception as e:  # noqa: BLE001
        assert type(e).__name__ == "InvalidArgument" and "cron" in str(e)
    else:
        raise AssertionError("a bad cron expression was accepted")


def test_a_due_cron_schedule_starts_a_run(client: Client, wf: WorkflowService) -> None:
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    # One clock for the whole test: reading utcnow() twice can straddle a minute
    # boundary, and then the schedule is rightly due again.
    now = utcnow()
    t = client.workflows.schedule("fanout", "* * * * *", params={"n": 2})
    assert wf.fire_due_schedules(now) == []  # next firing is after creation
    later = now + timedelta(minutes=2)
    runs = wf.fire_due_schedules(later)
    assert [r.trigger for r in runs] == [f"cron:{t['id']}"]
    assert wf.wait("alpha", runs[0].id, 60).state == "succeeded"
    assert wf.fire_due_schedules(later) == []  # moved on past `later`


def test_an_event_trigger_starts_a_run_when_its_match_holds(
        client: Client, wf: WorkflowService) -> None:
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    client.workflows.schedule("fanout", event="dataset.commit", match={"dataset": "digits"})
    assert wf.on_event("dataset.commit", {"project": "alpha", "dataset": "other"}) == []
    assert wf.on_event("alias.moved", {"project": "alpha", "dataset": "digits"}) == []
    runs = wf.on_event("dataset.commit", {"project": "alpha", "dataset": "digits",
                                          "version": 2})
    assert [r.trigger for r in runs] == ["event:dataset.commit"]
    assert wf.wait("alpha", runs[0].id, 60).state == "succeeded"


def test_cli_runs_and_draws_the_dag_with_step_states(settings: Settings) -> None:
    from modelyard.cli.main import app

    with live_server(settings.model_copy(update={"background": True})) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        env = {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": "alpha"}
        Client(live.resolved_public_url, token).create_project("alpha")
        runner = CliRunner()
        r = runner.invoke(app, ["pipeline", "register", str(SOURCE), "--entry",
                                f"{MODULE}:fanout"], env=env)
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["pipeline", "run", "fanout", "-P", "n=3", "--wait"], env=env)
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["pipeline", "show", "fanout"], env=env)
        assert r.exit_code == 0, r.output
        assert "numbers succeeded" in r.output
        assert "square succeeded ×3" in r.output
        assert "total succeeded" in r.output
        r = runner.invoke(app, ["pipeline", "list"], env=env)
        assert "fanout" in r.output


def test_each_new_dataset_commit_starts_one_run_of_a_watching_pipeline(
        client: Client, wf: WorkflowService) -> None:
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    client.workflows.schedule("fanout", event="dataset.commit", match={"dataset": "flowers"})
    assert wf.watch_datasets() == []  # the dataset does not exist yet
    client.datasets.import_builtin("flowers", "sklearn:iris")
    # The datasets service announced the commit: one run started at once...
    runs = client.workflows.list_runs("fanout")
    assert [r["trigger"] for r in runs] == ["event:dataset.commit"]
    # ...and neither the watcher's poll nor a repeated announcement starts a second one.
    assert wf.watch_datasets() == []
    assert wf.on_event("dataset.commit", {"project": "alpha", "dataset": "flowers",
                                          "version": 1}) == []
    client.datasets.import_builtin("flowers", "sklearn:iris", mode="append")
    assert len(client.workflows.list_runs("fanout")) == 2
    assert wf.watch_datasets() == []
    assert wf.wait("alpha", runs[0]["id"], 60).state == "succeeded"


def test_the_watcher_starts_a_run_for_a_commit_nobody_announced(
        api: TestClient, client: Client, wf: WorkflowService) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    platform.datasets.events = type(platform.events)()  # a commit made out of earshot
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    client.workflows.schedule("fanout", event="dataset.commit", match={"dataset": "flowers"})
    client.datasets.import_builtin("flowers", "sklearn:iris")
    assert client.workflows.list_runs("fanout") == []
    runs = wf.watch_datasets()
    assert [r.trigger for r in runs] == ["event:dataset.commit"]
    assert wf.watch_datasets() == []  # seen


def test_a_queued_run_can_be_cancelled_but_an_ended_one_cannot(
        client: Client, wf: WorkflowService) -> None:
    from modelyard.core.errors import FailedPrecondition

    client.workflows.register_package(package(), f"{MODULE}:fanout")
    queued = client.workflows.run("fanout")
    assert client.workflows.cancel(queued["id"])["cancel_requested"] is True
    assert wf.wait("alpha", queued["id"], 30).state == "cancelled"
    done = client.workflows.run("fanout", wait=True, timeout_s=60)
    assert done["state"] == "succeeded"
    try:
        client.workflows.cancel(done["id"])
    except FailedPrecondition as e:
        assert "already ended" in e.message
    else:
        raise AssertionError("cancelling an ended run was accepted")


def test_moving_an_alias_starts_one_run_of_a_pipeline_watching_it(
        api: TestClient, client: Client) -> None:
    from tests.serving._digits import onnx_model, register

    version = register(api.app.state.platform.registry, "alpha", "digits",  # type: ignore[attr-defined]
                       onnx_model(1.0))
    client.workflows.register_package(package(), f"{MODULE}:fanout")
    client.workflows.schedule("fanout", event="alias.moved",
                              match={"model": "digits", "alias": "production"})
    client.registry.set_alias("digits", "staging", version)  # not watched
    assert client.workflows.list_runs("fanout") == []
    client.registry.set_alias("digits", "production", version)
    assert [r["trigger"] for r in client.workflows.list_runs("fanout")] == ["event:alias.moved"]


def test_an_alert_that_starts_firing_starts_one_run_of_a_pipeline_watching_it(
        api: TestClient, client: Client) -> None:
    from tests.metrics.test_alerts import _errors

    client.workflows.register_package(package(), f"{MODULE}:fanout")
    client.workflows.schedule("fanout", event="alert.firing", match={"alert": "errors"})
    client.metrics.create_alert("errors", "error_rate", 0.1, deployment="web", window_s=60)
    api.app.state.platform.metrics.record(_errors(20, 5))  # type: ignore[attr-defined]
    assert client.metrics.evaluate_alerts()[0]["state"] == "firing"
    assert client.metrics.evaluate_alerts()[0]["state"] == "firing"  # still firing: no new run
    assert [r["trigger"] for r in client.workflows.list_runs("fanout")] == ["event:alert.firing"]


def test_cli_schedules_cancels_and_shows_a_cancelled_run(settings: Settings,
                                                         workdir: str) -> None:
    from modelyard.cli.main import app

    with live_server(settings.model_copy(update={"background": True})) as live:
        token = live.resolved_admin_token_file.read_text().strip()
        env = {"MODELYARD_URL": live.resolved_public_url, "MODELYARD_TOKEN": token,
               "MODELYARD_PROJECT": "alpha"}
        c = Client(live.resolved_public_url, token, "alpha")
        c.create_project("alpha")
        runner = CliRunner()
        for attr in ("fanout", "cancellable"):
            r = runner.invoke(app, ["pipeline", "register", str(SOURCE), "--entry",
                                    f"{MODULE}:{attr}"], env=env)
            assert r.exit_code == 0, r.output

        r = runner.invoke(app, ["pipeline", "schedule", "fanout", "--cron", "0 3 * * *",
                                "-P", "n=2"], env=env)
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["pipeline", "schedule", "fanout", "--event", "dataset.commit",
                                "--match", "dataset=digits"], env=env)
        assert r.exit_code == 0, r.output
        shown = {(t["kind"], t["cron"], t["event"]): t for t in c.workflows.list_schedules()}
        assert shown[("cron", "0 3 * * *", None)]["params"] == {"n": 2}
        assert shown[("event", None, "dataset.commit")]["match"] == {"dataset": "digits"}
        r = runner.invoke(app, ["pipeline", "schedule", "fanout", "--cron", "whenever"], env=env)
        assert r.exit_code != 0  # main() prints the server's message and exits 1
        assert type(r.exception).__name__ == "InvalidArgument" and "cron" in str(r.exception)
        assert len(c.workflows.list_schedules()) == 2  # nothing stored for the bad one

        r = runner.invoke(app, ["pipeline", "run", "cancellable", "-P", f"workdir={workdir}"],
                          env=env)
        assert r.exit_code == 0, r.output
        run_id = c.workflows.list_runs("cancellable")[0]["id"]
        deadline = time.monotonic() + 60  # until the blocking step has started in its worker
        while not count(workdir, "blocker") and time.monotonic() < deadline:
            time.sleep(0.05)
        r = runner.invoke(app, ["pipeline", "cancel", run_id], env=env)
        assert r.exit_code == 0, r.output
        assert c.workflows.get_run(run_id, wait_s=30)["state"] == "cancelled"
        r = runner.invoke(app, ["pipeline", "show", run_id], env=env)
        assert r.exit_code == 0, r.output
        assert "blocker cancelled" in r.output and "after_blocker cancelled" in r.output
        assert count(workdir, "after") == 0
        c.close()


def test_a_pipeline_registered_from_a_module_path_before_packages_is_refused_at_run(
        api: TestClient, team: Team, wf: WorkflowService) -> None:
    # As a database from before packages holds it: a `module:attr` source the server imported.
    old = wf.store.upsert_pipeline("alpha", "legacy", "tests.workflows.pipes:fanout", "",
                                   "1" * 64, {"name": "legacy", "params": {}, "steps": []},
                                   "eve")
    queued = wf.store.create_run(old, "1" * 64, {}, {}, "manual", "eve")
    r = api.post(f"{P}/legacy/runs", json={}, headers=bearer(team.editor))
    assert r.status_code == 409
    message = r.json()["error"]["message"]
    assert "no longer imports user code" in message
    assert "modelyard pipeline register DIR --entry tests.workflows.pipes:fanout" in message
    run = wf.wait("alpha", queued.id, 30)  # a run queued before the upgrade fails the same way
    assert run.state == "failed" and "Re-register it as a code package" in (run.error or "")
    assert "tests.workflows.pipes" not in __import__("sys").modules


def test_a_step_reaches_the_api_with_a_token_of_its_project_revoked_when_it_ends(
        settings: Settings) -> None:
    import httpx

    with live_server(settings.model_copy(update={"background": True})) as live:
        admin = live.resolved_admin_token_file.read_text().strip()
        c = Client(live.resolved_public_url, admin, "alpha")
        c.create_project("alpha")
        c.create_project("beta")
        c.workflows.register_package(package(), f"{MODULE}:calling")
        run = c.workflows.run("calling", wait=True, timeout_s=60)
        assert run["state"] == "succeeded", run["error"]
        out = run["steps"][0]["output"]
        assert out["mine"] == ["calling"]  # its own project: editor
        assert out["other"] in ("NotFound", "PermissionDenied")  # the admin's other project: no
        gone = httpx.get(f"{live.resolved_public_url}/api/v1/projects/alpha/pipelines",
                         headers={"Authorization": f"Bearer {out['token']}"})
        assert gone.status_code == 401  # revoked once the step ended
        c.close()
