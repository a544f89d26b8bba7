"""Admission control: past `api.max_in_flight` requests in flight, 429 + Retry-After; health,
/metrics and predictions never held back; admitted again once a slot is free; the SDK waits a
429 out."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.core.errors import ResourceExhausted
from modelyard.sdk.client import Client
from modelyard.server.admission import Slots
from tests._servers.admission import Live, P, limited_server, slot_held


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with limited_server(tmp_path / "home") as server:
        yield server


def test_full_server_answers_429_with_retry_after_and_admits_again_once_free(live: Live) -> None:
    with live.client() as c:
        with slot_held(live) as upload:
            r = c.get(P)
            assert r.status_code == 429
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "resource_exhausted"
            assert "MODELYARD_API__MAX_IN_FLIGHT" in r.json()["error"]["message"]
            # a refused write stores nothing, and the same connection carries the next request
            r = c.post(f"{P}/runs", json={"experiment": "e", "params": {"k": 1}})
            assert r.status_code == 429
            # never held back: probes, metrics, predictions (serving's own backpressure)
            assert c.get("/healthz").status_code == 200
            assert c.get("/readyz").status_code == 200
            assert c.get("/metrics").status_code == 200
            assert c.post(f"{P}/deployments/nope/predict",
                          json={"inputs": [[1.0]]}).status_code == 404
            assert c.get("/v2/health/live").status_code == 200
        assert upload == [201]
        assert c.get(P).status_code == 200  # admitted again
        assert c.get(f"{P}/runs").json()["runs"] == []  # the refused write left nothing
    assert live.gauge("modelyard_api_requests_shed") == 2


def test_a_request_waits_for_a_slot_freed_within_queue_wait(tmp_path: Path) -> None:
    with limited_server(tmp_path / "home", queue_wait_s=30) as live:
        answers: list[int] = []
        with slot_held(live):
            waiter = threading.Thread(target=lambda: answers.append(live.client().get(P).status_code))
            waiter.start()
            live.until("modelyard_api_requests_waiting", 1)
        waiter.join(30)
        assert answers == [200]
        assert live.gauge("modelyard_api_requests_shed") == 0


def test_sdk_waits_out_a_429_and_gives_up_after_its_patience(live: Live) -> None:
    got: list[str] = []
    with Client(live.url, live.token, project="alpha", busy_patience_s=30) as patient:
        with slot_held(live):
            with Client(live.url, live.token, project="alpha", busy_patience_s=0.5) as c, \
                    pytest.raises(ResourceExhausted):
                c.get_project("alpha")
            t = threading.Thread(target=lambda: got.append(patient.get_project("alpha")["name"]))
            t.start()
            live.until("modelyard_api_requests_shed", 2)  # the patient call has been shed once
        t.join(30)
    assert got == ["alpha"]  # ...and then answered, without the caller seeing the 429


def test_slots_hand_over_in_order_and_time_out() -> None:
    async def scenario() -> list[object]:
        slots = Slots(1)
        assert await slots.acquire(0)
        assert not await slots.acquire(0)  # full, no wait: refused at once
        assert not await slots.acquire(0.01)  # full for longer than the wait
        first = asyncio.ensure_future(slots.acquire(5))
        second = asyncio.ensure_future(slots.acquire(5))
        await asyncio.sleep(0)
        assert slots.waiting == 2
        slots.release()
        done = [await first, second.done(), slots.taken]
        slots.release()
        done.append(await second)
        slots.release()
        done.append(slots.taken)
        return done

    assert asyncio.run(scenario()) == [True, False, 1, True, 0]


def test_sdk_sends_a_streamed_file_upload_again_after_a_429(live: Live, tmp_path: Path) -> None:
    """A file upload shed with 429 starts over from the file's first byte once admitted: the
    dataset gets every row once, and the progress callback is taken back for the lost try."""
    data = tmp_path / "talk.csv"
    data.write_text("text,labels\n" + "".join(f"utterance {i},label{i % 3}\n" for i in range(2000)))
    blob = tmp_path / "model.bin"
    blob.write_bytes(bytes(range(256)) * 5000)
    seen: list[int] = []
    got: list[dict[str, object]] = []
    with Client(live.url, live.token, project="alpha", busy_patience_s=30) as patient:
        patient.datasets.create("talk", "text_intent")
        with slot_held(live):
            uploads = threading.Thread(target=lambda: got.extend([
                patient.datasets.upload_file("talk", data, progress=seen.append),
                patient.registry.upload_artifact(blob)]))
            uploads.start()
            live.until("modelyard_api_requests_shed", 1)  # the upload has been refused once
        uploads.join(30)
        commit, artifact = got
        assert commit["row_count"] == 2000
        assert [v["row_count"] for v in patient.datasets.versions("talk")] == [2000]
        assert artifact["size"] == blob.stat().st_size
        assert b"".join(patient.registry.iter_artifact(str(artifact["digest"]))) == \
            blob.read_bytes()
    assert sum(seen) == data.stat().st_size
    assert any(n < 0 for n in seen)  # the shed try's bytes were taken back


def test_sdk_does_not_resend_a_stream_it_cannot_rewind(live: Live) -> None:
    """A pipe cannot be read twice: its 429 is the caller's (ResourceExhausted), at once."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"text,labels\nhello,greet\n")
    os.close(write_end)
    with Client(live.url, live.token, project="alpha", busy_patience_s=30) as c, \
            open(read_end, "rb") as pipe:
        c.datasets.create("talk", "text_intent")
        with slot_held(live), pytest.raises(ResourceExhausted):
            c.datasets.upload_stream("talk", pipe, "csv")
        assert c.datasets.versions("talk") == []
