"""Garbage collection racing an upload or a registration never leaves a dangling artifact.

The interleavings are forced, not hoped for: the real content store and the real SQL store,
each made to stop at one point (after the bytes are stored; before the version is written)
until the test has run a collection, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.blobs import ContentStore, LocalBlobStore
from modelyard.registry.models import ModelVersion
from modelyard.registry.service import RegistryService
from modelyard.registry.store import SqlRegistryStore
from tests._servers.databases import BACKENDS, fresh_database


class _Gate:
    """Stops a caller at one point once armed, until `release()`."""

    def __init__(self) -> None:
        self.armed = False
        self.reached = threading.Event()
        self._go = threading.Event()

    def stop_here(self) -> None:
        if self.armed:
            self.reached.set()
            self._go.wait(30)

    def release(self) -> None:
        self._go.set()


class _PausingContentStore(ContentStore):
    def __init__(self, root: Path, gate: _Gate) -> None:
        super().__init__(LocalBlobStore(root))
        self.gate = gate

    @contextmanager
    def staged(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with super().staged(*args, **kwargs) as staged:
            first = staged.store

            def store() -> Any:
                stored = first()
                staged.store = first
                self.gate.stop_here()  # the bytes are (or were already) stored, no row yet
                return stored

            staged.store = store
            yield staged


class _PausingStore(SqlRegistryStore):
    gate: _Gate

    def add_version(self, *args: Any, **kwargs: Any) -> ModelVersion:
        self.gate.stop_here()  # the artifacts were checked, the version not yet written
        return super().add_version(*args, **kwargs)


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RegistryService, _Gate]]:
    gate = _Gate()
    with fresh_database(request, tmp_path) as db:
        store = _PausingStore(db)
        store.gate = gate
        yield RegistryService(db, _PausingContentStore(tmp_path / "blobs", gate), store), gate


def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=target)
    t.start()
    return t, out


def test_an_upload_of_bytes_collected_meanwhile_stores_them_again(
        rig: tuple[RegistryService, _Gate]) -> None:
    registry, gate = rig
    registry.put_artifact("alpha", b"weights", name="m.onnx")  # unheld: collectable
    gate.armed = True
    upload, result = _in_thread(registry.put_artifact, "beta", b"weights", name="m.onnx")
    assert gate.reached.wait(30)  # beta's put found the bytes already stored
    report = registry.gc_artifacts(retention_s=0)  # alpha's row goes, and with it the bytes
    assert (report.artifact_rows_deleted, report.blobs_deleted) == (1, 1)
    gate.release()
    upload.join(30)
    assert "error" not in result, result  # the upload neither fails nor asks for a retry
    art = result["value"]
    assert [a.digest for a in registry.list_artifacts("beta")] == [art.digest]
    assert registry.read_artifact("beta", art.digest) == b"weights"


def test_uploads_and_collections_side_by_side_never_fail_nor_leave_a_row_without_bytes(
        rig: tuple[RegistryService, _Gate]) -> None:
    registry, _ = rig
    payloads = [f"model-{i % 3}".encode() for i in range(24)]  # the same bytes, again and again
    errors: list[BaseException] = []
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            try:
                registry.gc_artifacts(retention_s=0)
            except Exception as e:  # noqa: BLE001 - handed to the test
                errors.append(e)

    def upload(project: str) -> None:
        for data in payloads:
            try:
                registry.put_artifact(project, data, name="m.onnx")
            except Exception as e:  # noqa: BLE001 - handed to the test
                errors.append(e)

    threads = [threading.Thread(target=collect)] + [
        threading.Thread(target=upload, args=(p,)) for p in ("alpha", "beta")]
    for t in threads[1:]:
        t.start()
    threads[0].start()
    for t in threads[1:]:
        t.join(120)
    done.set()
    threads[0].join(60)
    assert errors == []
    for project in ("alpha", "beta"):  # every row left names bytes that are there
        for a in registry.list_artifacts(project):
            assert registry.read_artifact(project, a.digest) in payloads


def test_a_collection_during_a_registration_keeps_the_artifacts_it_holds(
        rig: tuple[RegistryService, _Gate]) -> None:
    registry, gate = rig
    art = registry.put_artifact("alpha", b"onnx-bytes", name="model.onnx")
    gate.armed = True
    register, registered = _in_thread(registry.register_version, "alpha", "digits",
                                      {"model.onnx": art.digest})
    assert gate.reached.wait(30)  # the artifact was checked, the version not yet written
    gc, collected = _in_thread(registry.gc_artifacts, retention_s=0)
    gc.join(0.5)  # a chance to run now, if nothing holds it back
    gate.release()
    register.join(30)
    gc.join(30)
    assert "error" not in registered and "error" not in collected, (registered, collected)
    version = registered["value"]
    assert collected["value"].artifact_rows_deleted == 0
    assert registry.read_artifact("alpha", version.artifacts["model.onnx"]) == b"onnx-bytes"
