"""kill -9 of a real server process in the middle of writes; a restart on the same data dir
shows everything that was acknowledged and nothing half-written.

Crash points here, each through the real server process: an artifact upload, metric ingestion,
a dataset upload (while its file streams in, and while its commit is written), a training job,
an HPO study and a pipeline run. Component suites add finer ones (see docs/reliability.md): a
dataset commit killed between the Lance and the metadata commit (tests/datasets/test_crash.py),
a training server stopped gracefully (tests/training/test_restart.py), a bare pipeline engine
killed mid-step (tests/workflows/test_resume.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.reliability._proc import ServerProcess, server_process
from tests.reliability.conftest import Summary

pytestmark = pytest.mark.integration

P = "/api/v1/projects/alpha"


def _project(c: httpx.Client) -> None:
    r = c.post("/api/v1/projects", json={"name": "alpha"})
    assert r.status_code in (201, 409), r.text


def test_killed_artifact_upload_leaves_no_artifact_and_keeps_every_acknowledged_one(
        tmp_path: Path, summary: Summary) -> None:
    home = tmp_path / "home"
    acknowledged: dict[str, bytes] = {}
    half = os.urandom(64 * 1024)  # the first chunk of the upload that never finishes
    half_digest_if_cut = hashlib.sha256(half).hexdigest()
    sent_half = threading.Event()
    outcome: list[object] = []

    with server_process(home) as server:
        port = server.port
        with server.client() as c:
            _project(c)
            for i in range(5):
                data = os.urandom(100_000 + i)
                r = c.post(f"{P}/artifacts", params={"name": f"a{i}"}, content=data)
                assert r.status_code == 201, r.text
                assert r.json()["digest"] == hashlib.sha256(data).hexdigest()
                acknowledged[r.json()["digest"]] = data

            def slow_body() -> Iterator[bytes]:
                yield half
                sent_half.set()
                for _ in range(600):  # never finishes before the kill
                    time.sleep(0.05)
                    yield b"x" * 1024

            def upload() -> None:
                try:
                    with httpx.Client(base_url=server.url, timeout=60,
                                      headers={"Authorization": f"Bearer {server.token}"}) as u:
                        outcome.append(u.post(f"{P}/artifacts", params={"name": "cut"},
                                              content=slow_body()).status_code)
                except httpx.HTTPError as e:
                    outcome.append(e)

            t = threading.Thread(target=upload)
            t.start()
            assert sent_half.wait(30)
            time.sleep(0.3)  # the server is now spooling the body
            server.kill()
            t.join(60)
    assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome  # never acknowledged

    with server_process(home, port=port) as server, server.client() as c:
        listed = c.get(f"{P}/artifacts", params={"limit": 1000}).json()
        digests = {a["digest"] for a in listed}
        assert set(acknowledged) <= digests  # nothing acknowledged is lost
        assert c.head(f"{P}/artifacts/{half_digest_if_cut}").status_code == 404
        for a in listed:  # every visible artifact has its whole blob
            body = c.get(f"{P}/artifacts/{a['digest']}").content
            assert hashlib.sha256(body).hexdigest() == a["digest"]
            assert len(body) == a["size"]
        assert digests == set(acknowledged)  # the cut upload left no row
        # and the server takes the same upload again afterwards
        again = c.post(f"{P}/artifacts", params={"name": "again"}, content=half)
        assert again.status_code == 201 and again.json()["digest"] == half_digest_if_cut
    summary.add("crash", crash_points=["artifact upload (streamed body, kill -9)"],
                crash_points_survived=1, acknowledged_checked=len(acknowledged), lost=0)


def _events(batch: int, n: int, at: datetime) -> list[dict[str, object]]:
    return [{"deployment": "d", "model": "m", "version": 1, "time": at.isoformat(),
             "latency_ms": 1.0, "request_id": f"b{batch}-{i}"} for i in range(n)]


def test_killed_metric_ingestion_keeps_every_acknowledged_batch_whole(
        tmp_path: Path, summary: Summary) -> None:
    home, size = tmp_path / "home", 200
    at = datetime(2024, 1, 1, 12, 0, 0)
    acked: list[int] = []
    sent: list[int] = []
    stop = threading.Event()

    with server_process(home) as server:
        port = server.port
        with server.client() as c:
            _project(c)

        def ingest(worker: int) -> None:
            with server.client(timeout=30) as w:
                batch = worker * 100_000
                while not stop.is_set():
                    sent.append(batch)
                    try:
                        r = w.post(f"{P}/metrics/events", json={"events": _events(batch, size, at)})
                    except httpx.HTTPError:
                        return
                    assert r.status_code == 201, r.text
                    assert r.json()["accepted"] == size
                    acked.append(batch)
                    batch += 1

        workers = [threading.Thread(target=ingest, args=(i,)) for i in range(2)]
        for t in workers:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # while both workers are sending
        stop.set()
        for t in workers:
            t.join(60)
    assert len(acked) >= 10

    with server_process(home, port=port) as server, server.client() as c:
        r = c.get(f"{P}/metrics/query", params={
            "metric": "count", "start": (at - timedelta(hours=1)).isoformat(),
            "end": (at + timedelta(hours=1)).isoformat(), "step_s": 7200})
        assert r.status_code == 200, r.text
        stored = int(sum(p["value"] or 0 for s in r.json()["series"] for p in s["points"]))
    assert stored >= len(acked) * size  # every acknowledged event is there
    assert stored <= len(sent) * size
    assert stored % size == 0  # batches are stored whole or not at all
    summary.add("crash", crash_points=["metric ingestion (2 writers, kill -9)"],
                crash_points_survived=1, acknowledged_checked=len(acked) * size,
                lost=len(acked) * size - min(stored, len(acked) * size))


def _csv(start: int, n: int) -> bytes:
    return b"x,y\n" + b"".join(f"{i},{i * 0.5}\n".encode() for i in range(start, start + n))


@pytest.mark.parametrize("when", ["while the file streams in", "while the commit is written"])
def test_killed_dataset_upload_leaves_the_last_acknowledged_version_or_a_whole_new_one(
        tmp_path: Path, summary: Summary, when: str) -> None:
    """Seen over HTTP, the crash-point test of tests/datasets/test_crash.py: a version is
    there with all its rows, or not there at all."""
    home, n = tmp_path / "home", 50_000
    streamed, killed = threading.Event(), threading.Event()
    outcome: list[object] = []
    with server_process(home) as server:
        port = server.port
        with server.client() as c:
            _project(c)
            assert c.post(f"{P}/datasets", json={
                "name": "t", "type": "tabular",
                "config": {"columns": {"x": "int", "y": "float"}, "target": "y"}}).status_code == 201
            r = c.post(f"{P}/datasets/t/upload", params={"format": "csv"}, content=_csv(0, 100))
            assert r.status_code == 201, r.text

        big = _csv(1000, n)

        def body() -> Iterator[bytes]:
            step = len(big) // 8
            for k in range(0, len(big), step):
                yield big[k:k + step]
                if when == "while the file streams in" and k >= 4 * step:
                    streamed.set()
                    killed.wait(30)
            streamed.set()

        def upload() -> None:
            try:
                with server.client(timeout=60) as u:
                    outcome.append(u.post(f"{P}/datasets/t/upload", params={"format": "csv"},
                                          content=body()).status_code)
            except httpx.HTTPError as e:
                outcome.append(e)

        t = threading.Thread(target=upload)
        t.start()
        assert streamed.wait(30)
        time.sleep(0.2 if when == "while the file streams in" else 0.3)
        server.kill()
        killed.set()
        t.join(60)

    with server_process(home, port=port) as server, server.client() as c:
        versions = c.get(f"{P}/datasets/t/versions").json()
        items = versions["items"] if isinstance(versions, dict) else versions
        rows = c.get(f"{P}/datasets/t/stats").json()["row_count"]
        acknowledged = outcome == [201]
        assert [v["version"] for v in items] in ([1], [1, 2])
        if len(items) == 1:
            assert not acknowledged and rows == 100
        else:  # the commit made it before the kill: whole
            assert rows == 100 + n
        again = c.post(f"{P}/datasets/t/upload", params={"format": "csv"}, content=_csv(5, 5))
        assert again.status_code == 201, again.text
    summary.add("crash", crash_points=[f"dataset upload over HTTP ({when}, kill -9)"],
                crash_points_survived=1, lost=0, dataset_kill_outcomes=[
                    f"{when}: {'new version whole' if len(items) == 2 else 'no new version'}"])


JOB = '''
import socket
from modelyard import runtime
ctx = runtime.context()
runtime.log_metrics(0, loss=1.0)
runtime.flush_metrics()  # acknowledged by the server from here on
# Held until the test releases it over loopback (the job's sandbox sees none of its files).
with socket.create_connection(("127.0.0.1", ctx.hyperparameters["release_port"])) as s:
    s.recv(1)
runtime.log_metrics(1, loss=0.5)
'''


def _zip(text: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", text)
    return buf.getvalue()


def test_server_killed_while_a_job_runs_finishes_the_job_and_keeps_its_metrics(
        tmp_path: Path, summary: Summary) -> None:
    """tests/training/test_restart.py stops the server gracefully; this one kills it -9."""
    home = tmp_path / "home"
    release = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(release.accept()[0]), daemon=True).start()
    with server_process(home, background=True, capacity_cpus=1) as server:
        port = server.port
        with server.client() as c:
            _project(c)
            code = c.post(f"{P}/training/code", content=_zip(JOB)).json()
            job = c.post(f"{P}/jobs", json={
                "code": {"digest": code["digest"], "entrypoint": "train.py"},
                "hyperparameters": {"release_port": release.getsockname()[1]},
                "max_retries": 1}).json()
            deadline = time.monotonic() + 60
            run_id = job["run_id"] or c.get(f"{P}/jobs/{job['id']}").json()["run_id"]
            while not c.get(f"{P}/runs/{run_id}/metrics", params={"key": "loss"}).json():
                assert time.monotonic() < deadline, "the job never reported its first step"
                time.sleep(0.1)
        server.kill()

    with server_process(home, port=port, background=True, capacity_cpus=1) as server, \
            server.client() as c:
        deadline = time.monotonic() + 90
        while not held:  # the job connects once its first step is acknowledged
            assert time.monotonic() < deadline, "the job never waited for its release"
            time.sleep(0.05)
        held[0].sendall(b"x")
        while (done := c.get(f"{P}/jobs/{job['id']}").json())["state"] not in (
                "succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, done
            time.sleep(0.2)
        logs = c.get(f"{P}/jobs/{job['id']}/logs").text
        assert done["state"] == "succeeded", (done, logs)
        series = c.get(f"{P}/runs/{done['run_id']}/metrics", params={"key": "loss"}).json()
    assert {p["step"] for p in series} == {0, 1}  # the step acknowledged before the kill is kept
    summary.add("crash", crash_points=["training job running (server kill -9)"],
                crash_points_survived=1, acknowledged_checked=1, lost=0)


def test_killed_server_mid_study_finishes_with_exactly_the_trial_budget(
        tmp_path: Path, summary: Summary) -> None:
    from modelyard.sdk.client import Client
    from tests.hpo.test_study_e2e import study_spec

    home, n_trials = tmp_path / "home", 3
    spec = study_spec("", "crash", n_trials=n_trials, pruner={"kind": "none"},
                      sampler={"kind": "random", "seed": 1}, hyperparameters={"epochs": 5})
    with server_process(home, background=True) as server:
        port = server.port
        with Client(server.url, server.token, project="alpha") as c:
            c.create_project("alpha")
            c.datasets.import_builtin("digits", "sklearn:digits")
            spec["dataset_snapshot"] = c.datasets.snapshot("digits", seed=0)["id"]
            c.hpo.create_from_spec(spec)
            deadline = time.monotonic() + 120
            while sum(1 for t in c.hpo.trials("crash") if t["job_id"]) < 2:
                assert time.monotonic() < deadline, "no trial started"
                time.sleep(0.2)
        server.kill()  # the controller dies with two trials in flight
    with server_process(home, port=port, background=True) as server, \
            Client(server.url, server.token, project="alpha") as c:
        done = c.hpo.wait("crash", timeout=300)
        trials = c.hpo.trials("crash")
        jobs = [j for j in c.training.list(limit=100)["items"]
                if j["name"].startswith("crash-trial-")]
    assert done["state"] == "completed", done
    assert [t["number"] for t in trials] == list(range(n_trials))  # none lost, none twice
    assert all(t["state"] == "completed" for t in trials), trials
    assert sorted(j["id"] for j in jobs) == sorted(t["job_id"] for t in trials)
    summary.add("crash", crash_points=["HPO study (controller killed mid-trials, kill -9)"],
                crash_points_survived=1, lost=0)


def _wait_file(path: Path, server: ServerProcess, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert server.alive(), server.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_server_killed_mid_pipeline_step_resumes_without_repeating_steps_or_effects(
        tmp_path: Path, summary: Summary, monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/workflows/test_resume.py kills a bare engine host; this one kills the server."""
    from tests.workflows._packages import MODULE, count, package

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    # The step counts its runs in files of `work`, which a sandbox would hide from it.
    monkeypatch.setenv("MODELYARD_SECURITY__SANDBOX", "off")
    with server_process(home, background=True) as server:
        port = server.port
        with server.client() as c:
            _project(c)
            r = c.post(f"{P}/pipelines/packages", params={"entry": f"{MODULE}:resumable"},
                       content=package())
            assert r.status_code == 201, r.text
            r = c.post(f"{P}/pipelines/resumable/runs", json={"params": {"workdir": str(work)}})
            assert r.status_code == 202, r.text
            run_id = r.json()["id"]
            _wait_file(work / "s2.running", server)  # s1 done, s2 recorded its effect, waits
        server.kill()
    assert (count(str(work), "s1"), count(str(work), "s2"), count(str(work), "s3")) == (1, 1, 0)

    with server_process(home, port=port, background=True) as server, server.client() as c:
        before = c.get(f"{P}/pipelines/runs/{run_id}").json()
        assert before["state"] == "running"  # acknowledged (202) before the kill: still there
        (work / "release").touch()
        deadline = time.monotonic() + 90
        while (run := c.get(f"{P}/pipelines/runs/{run_id}", params={"wait_s": 5}).json())[
                "state"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, run
    assert run["state"] == "succeeded", run["error"]
    steps = {s["step"]: s for s in run["steps"]}
    assert steps["s3"]["output"] == "one+job-1+three"
    assert count(str(work), "s1") == 1  # finished before the kill: never run again
    assert count(str(work), "s2") == 2  # in flight at the kill: run again...
    assert count(str(work), "submitted") == 1  # ...replaying its recorded side effect, not redoing it
    assert steps["s2"]["effects"] == {"job": "job-1"}
    assert count(str(work), "s3") == 1
    summary.add("crash", crash_points=["pipeline run (server kill -9 mid-step)"],
                crash_points_survived=1, lost=0)
