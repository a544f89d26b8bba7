"""The registry's behaviour, the same on every metadata backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelyard.core.errors import InvalidArgument, NotFound
from modelyard.core.ids import utcnow
from modelyard.registry.service import RegistryService
from tests.registry.conftest import blob_files


def _run(reg: RegistryService, project: str = "alpha", **kw: object) -> str:
    args: dict[str, object] = {"experiment": "exp", "params": {"lr": 0.1}, "tags": {},
                               "job_id": None, "code_hash": None, "dataset_snapshot": None,
                               "user": "eve"}
    args.update(kw)
    return reg.create_run(project, **args).id  # type: ignore[arg-type]


def test_run_keeps_params_tags_and_metric_series(registry: RegistryService) -> None:
    run = registry.create_run("alpha", "exp", {"lr": 0.01, "opt": "adam", "layers": [64, 32]},
                              {"team": "vision"}, "job_1", "abc123", "snap_1", "eve")
    registry.log_metrics("alpha", run.id, [("loss", s, 1.0 / (s + 1), 1000.0 + s) for s in range(50)])
    registry.log_metrics("alpha", run.id, [("acc", 0, 0.5, 1000.0), ("acc", 1, 0.75, 1001.0)])
    done = registry.finish_run("alpha", run.id, "finished")

    series = registry.get_metric_series("alpha", run.id, "loss")
    assert [p.step for p in series] == list(range(50))
    assert series[-1].value == pytest.approx(1 / 50)
    assert done.status == "finished" and done.ended_at is not None
    assert done.params == {"lr": 0.01, "opt": "adam", "layers": [64, 32]}
    assert done.tags == {"team": "vision"}
    assert done.metrics == {"loss": pytest.approx(1 / 50), "acc": 0.75}
    assert (done.job_id, done.code_hash, done.dataset_snapshot) == ("job_1", "abc123", "snap_1")


def test_latest_metric_is_the_highest_step_even_when_logged_out_of_order(registry: RegistryService) -> None:
    run_id = _run(registry)
    registry.log_metrics("alpha", run_id, [("loss", 10, 0.1, 1.0)])
    registry.log_metrics("alpha", run_id, [("loss", 3, 0.9, 2.0)])
    assert registry.get_run("alpha", run_id).metrics == {"loss": 0.1}


def test_a_batch_with_one_bad_point_stores_nothing(registry: RegistryService) -> None:
    run_id = _run(registry)
    with pytest.raises(InvalidArgument):
        registry.log_metrics("alpha", run_id, [("loss", 0, 1.0, None), ("loss", 1, "x", None)])
    assert registry.get_metric_series("alpha", run_id, "loss") == []


def test_runs_of_another_project_are_not_found(registry: RegistryService) -> None:
    run_id = _run(registry, project="alpha")
    with pytest.raises(NotFound):
        registry.get_run("beta", run_id)
    with pytest.raises(NotFound):
        registry.log_metrics("beta", run_id, [("loss", 0, 1.0, None)])


def test_search_filters_on_metrics_params_and_tags(registry: RegistryService) -> None:
    for i in range(12):
        run_id = _run(registry, params={"lr": i / 100, "opt": "adam" if i % 2 else "sgd"},
                      tags={"team": "a" if i < 6 else "b"})
        registry.log_metrics("alpha", run_id, [("acc", 0, i / 10, None)])
    found = registry.search_runs("alpha", "metrics.acc >= 0.5 and params.opt = 'adam' and tags.team = 'b'",
                                 order_by=["metrics.acc desc"])
    assert [r["metrics"]["acc"] for r in found.runs] == [1.1, 0.9, 0.7]
    numeric = registry.search_runs("alpha", [{"field": "params.lr", "op": "<", "value": 0.03}])
    assert sorted(r["params"]["lr"] for r in numeric.runs) == [0.0, 0.01, 0.02]


def test_search_pages_cover_every_run_once_and_return_only_asked_fields(registry: RegistryService) -> None:
    ids = set()
    for i in range(23):
        run_id = _run(registry)
        registry.log_metrics("alpha", run_id, [("acc", 0, i / 100, None)])
        ids.add(run_id)
    seen: list[str] = []
    token = None
    while True:
        page = registry.search_runs("alpha", "metrics.acc >= 0", ["metrics.acc asc"], limit=5,
                                    page_token=token, fields=["metrics.acc"])
        for r in page.runs:
            assert set(r) == {"id", "metrics"} and set(r["metrics"]) == {"acc"}
        seen += [r["id"] for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    assert len(seen) == 23 and set(seen) == ids


@pytest.mark.parametrize("bad", ["metrics.acc >> 1", "params.lr", "nonsense.x = 1",
                                 "metrics.acc = 'high'"])
def test_unreadable_filters_are_rejected(registry: RegistryService, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        registry.search_runs("alpha", bad)


def test_same_bytes_are_stored_once(registry: RegistryService, blob_root: Path) -> None:
    a = registry.put_artifact("alpha", b"weights" * 1000, "application/octet-stream", "w.bin")
    b = registry.put_artifact("alpha", io.BytesIO(b"weights" * 1000), "application/octet-stream", "w2.bin")
    c = registry.put_artifact("beta", b"weights" * 1000, "application/octet-stream", "w.bin")
    assert a.digest == b.digest == c.digest and a.size == 7000
    assert len(blob_files(blob_root)) == 1
    with registry.open_artifact("beta", a.digest) as f:
        assert f.read() == b"weights" * 1000


def test_artifacts_are_visible_only_in_their_project(registry: RegistryService) -> None:
    a = registry.put_artifact("alpha", b"secret", "text/plain", "s.txt")
    with pytest.raises(NotFound):
        registry.open_artifact("beta", a.digest)


class _BrokenStream(io.RawIOBase):
    """A stream that fails after a few chunks, like a connection dropped midway."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 3:
            raise ConnectionResetError("connection dropped")
        return b"x" * 1024


def test_interrupted_upload_leaves_no_artifact_and_no_blob(registry: RegistryService,
                                                           blob_root: Path) -> None:
    with pytest.raises(ConnectionResetError):
        registry.put_artifact("alpha", _BrokenStream(), "application/octet-stream", "cut.bin")
    assert registry.list_artifacts("alpha") == []
    assert blob_files(blob_root) == []


def test_versions_count_up_per_model_under_concurrent_registrations(registry: RegistryService) -> None:
    art = registry.put_artifact("alpha", b"onnx", "application/octet-stream", "model.onnx")

    def register(_: int) -> int:
        return registry.register_version("alpha", "digits", {"model.onnx": art.digest},
                                         "onnx", {}, {}, {"acc": 0.9}, None, None, None, None,
                                         {}, "eve").version

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(register, range(12)))
    assert sorted(numbers) == list(range(1, 13))
    assert registry.register_version("alpha", "other").version == 1
    assert [v.version for v in registry.list_versions("alpha", "digits")] == list(range(1, 13))


def test_a_version_cannot_name_an_artifact_missing_from_its_project(registry: RegistryService) -> None:
    art = registry.put_artifact("beta", b"elsewhere", "application/octet-stream", "m")
    with pytest.raises(InvalidArgument):
        registry.register_version("alpha", "digits", {"model.onnx": art.digest})
    with pytest.raises(NotFound):
        registry.get_model("alpha", "digits")


def test_alias_moves_are_recorded_with_who_and_from_where(registry: RegistryService) -> None:
    for _ in range(3):
        registry.register_version("alpha", "digits")
    first = registry.set_alias("alpha", "digits", "production", 1, "ada")
    second = registry.set_alias("alpha", "digits", "production", 3, "eve")
    assert (first.from_version, first.to_version) == (None, 1)
    assert (second.from_version, second.to_version, second.actor) == (1, 3, "eve")
    history = registry.alias_history("alpha", "digits", "production")
    assert [(m.from_version, m.to_version, m.actor) for m in history] == [(1, 3, "eve"), (None, 1, "ada")]
    assert registry.resolve("alpha", "digits@production").version == 3


def test_each_alias_move_records_when_it_happened(registry: RegistryService) -> None:
    registry.register_version("alpha", "digits")
    before = utcnow()
    move = registry.set_alias("alpha", "digits", "staging", 1, "ada")
    after = utcnow()
    (recorded,) = registry.alias_history("alpha", "digits", "staging")
    assert before <= move.moved_at <= after
    assert recorded.moved_at == move.moved_at and recorded.actor == "ada"


def test_concurrent_alias_moves_leave_one_unbroken_history(registry: RegistryService) -> None:
    """Each move reads the alias and records it in one transaction: replayed oldest first,
    every move starts where the one before it ended, and the alias ends where the last did."""
    # Each move names a version of its own: a move to the version the alias already names
    # changes nothing and is not recorded, so with shared targets the count would depend on
    # the interleaving.
    for _ in range(24):
        registry.register_version("alpha", "digits")

    def move(i: int) -> None:
        registry.set_alias("alpha", "digits", "production", i + 1, f"user{i}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(move, range(24)))
    history = registry.alias_history("alpha", "digits", "production")[::-1]  # oldest first
    assert len(history) == 24
    assert history[0].from_version is None
    for prev, nxt in zip(history, history[1:], strict=False):
        assert nxt.from_version == prev.to_version
    assert sorted(m.actor for m in history) == sorted(f"user{i}" for i in range(24))
    assert registry.resolve("alpha", "digits@production").version == history[-1].to_version


def test_moving_an_alias_to_a_missing_version_changes_nothing(registry: RegistryService) -> None:
    registry.register_version("alpha", "digits")
    registry.set_alias("alpha", "digits", "production", 1, "ada")
    with pytest.raises(NotFound):
        registry.set_alias("alpha", "digits", "production", 7, "eve")
    assert registry.resolve("alpha", "digits@production").version == 1
    assert len(registry.alias_history("alpha", "digits")) == 1


@pytest.mark.parametrize("alias", ["3", "latest", "Prod!", ""])
def test_aliases_that_read_as_versions_or_bad_names_are_refused(registry: RegistryService,
                                                                alias: str) -> None:
    registry.register_version("alpha", "digits")
    with pytest.raises(InvalidArgument):
        registry.set_alias("alpha", "digits", alias, 1, "ada")


def test_resolve_reads_versions_aliases_and_latest(registry: RegistryService) -> None:
    for _ in range(3):
        registry.register_version("alpha", "digits")
    registry.set_alias("alpha", "digits", "staging", 2, "ada")
    assert registry.resolve("alpha", "digits@1").version == 1
    assert registry.resolve("alpha", "digits@staging").version == 2
    assert registry.resolve("alpha", "digits").version == 3
    assert registry.resolve("alpha", "digits@latest").version == 3
    for bad in ["", "digits@", "digits@@1", "Digits", "digits@0", "a b"]:
        with pytest.raises(InvalidArgument):
            registry.resolve("alpha", bad)
    for unknown in ["nope", "digits@9", "digits@production"]:
        with pytest.raises(NotFound):
            registry.resolve("alpha", unknown)
    with pytest.raises(NotFound):
        registry.resolve("beta", "digits@1")


def test_lineage_walks_from_a_model_version_back_to_snapshot_code_params_and_job(
        registry: RegistryService) -> None:
    run = registry.create_run("alpha", "exp", {"lr": 0.05, "epochs": 3}, {}, "job_7", "code_9",
                              "snap_3", "eve")
    art = registry.put_artifact("alpha", b"onnx-bytes", "application/octet-stream", "model.onnx")
    mv = registry.register_version("alpha", "digits", {"model.onnx": art.digest}, run_id=run.id)
    registry.add_edge("alpha", "model_version", "digits@1", "deployment", "dep_1", "serves")
    registry.add_edge("alpha", "deployment", "dep_1", "prediction", "pred_1", "answered")

    up = registry.lineage("alpha", "prediction", "pred_1", "upstream", depth=10)
    nodes = {(n.kind, n.id): n for n in up.nodes}
    assert {("dataset_snapshot", "snap_3"), ("code", "code_9"), ("job", "job_7"), ("run", run.id),
            ("model_version", "digits@1"), ("deployment", "dep_1")} <= set(nodes)
    assert nodes[("run", run.id)].attrs["params"] == {"lr": 0.05, "epochs": 3}
    assert mv.params == {"lr": 0.05, "epochs": 3} and mv.dataset_snapshot_id == "snap_3"

    shallow = registry.lineage("alpha", "prediction", "pred_1", "upstream", depth=1)
    assert {(n.kind, n.id) for n in shallow.nodes} == {("prediction", "pred_1"), ("deployment", "dep_1")}
    down = registry.lineage("alpha", "dataset_snapshot", "snap_3", "downstream", depth=3)
    assert ("model_version", "digits@1") in {(n.kind, n.id) for n in down.nodes}
    assert registry.is_referenced("alpha", "dataset_snapshot", "snap_3")
    assert not registry.is_referenced("alpha", "dataset_snapshot", "snap_other")
    assert not registry.is_referenced("beta", "dataset_snapshot", "snap_3")


def test_lineage_names_model_versions_canonically(registry: RegistryService) -> None:
    mv = registry.register_version("alpha", "digits")
    registry.set_alias("alpha", "digits", "production", 1, "ada")
    by_alias = registry.add_edge("alpha", "model_version", "digits@production", "deployment", "d1")
    by_id = registry.add_edge("alpha", "model_version", mv.id, "deployment", "d2")
    assert by_alias.src_id == by_id.src_id == "digits@1"
    with pytest.raises(InvalidArgument):
        registry.add_edge("alpha", "spaceship", "x", "run", "y")
    with pytest.raises(NotFound):
        registry.add_edge("alpha", "model_version", "digits@5", "deployment", "d3")


def test_gc_forgets_unheld_artifacts_and_keeps_those_a_version_holds(
        registry: RegistryService, blob_root: Path) -> None:
    kept = registry.put_artifact("alpha", b"model", "application/octet-stream", "model.onnx")
    registry.put_artifact("alpha", b"scratch", "application/octet-stream", "tmp.bin")
    registry.register_version("alpha", "digits", {"model.onnx": kept.digest})
    assert registry.gc_artifacts(retention_s=3600).artifact_rows_deleted == 0
    report = registry.gc_artifacts(retention_s=0)
    assert (report.artifact_rows_deleted, report.blobs_deleted) == (1, 1)
    assert [a.digest for a in registry.list_artifacts("alpha")] == [kept.digest]
    assert len(blob_files(blob_root)) == 1
    assert registry.read_artifact("alpha", kept.digest) == b"model"


def test_gc_retention_counts_from_the_last_upload_of_the_same_bytes(
        registry: RegistryService, blob_root: Path) -> None:
    """Bytes uploaded again (say, just before registering them) are not collected as old."""
    again = registry.put_artifact("alpha", b"reused", "application/octet-stream", "m.onnx")
    registry.put_artifact("alpha", b"forgotten", "application/octet-stream", "tmp.bin")
    time.sleep(0.5)
    between = utcnow()
    time.sleep(0.5)
    second = registry.put_artifact("alpha", b"reused", "application/octet-stream", "m.onnx")
    assert second.digest == again.digest and second.created_at == again.created_at
    report = registry.gc_artifacts(retention_s=(utcnow() - between).total_seconds())
    assert (report.artifact_rows_deleted, report.blobs_deleted) == (1, 1)  # only "forgotten"
    assert [a.digest for a in registry.list_artifacts("alpha")] == [again.digest]
    assert registry.read_artifact("alpha", again.digest) == b"reused"
    assert len(blob_files(blob_root)) == 1


def test_migration_builds_exactly_the_orm_tables(registry: RegistryService) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import modelyard.registry.tables  # noqa: F401 - registers the registry's tables
    from modelyard.core.db import Base

    with registry.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    def ours(item: object) -> bool:
        return "registry_" in repr(item)

    assert [d for d in diff if ours(d)] == []


def test_search_by_time_and_a_metric_range(registry: RegistryService) -> None:
    for i in range(6):
        registry.log_metrics("alpha", _run(registry), [("acc", 0, i / 10, None)])
    found = registry.search_runs("alpha", "metrics.acc > 0.1 and metrics.acc < 0.5 and "
                                          "created_at > '2000-01-01T00:00:00'",
                                 ["metrics.acc desc"])
    assert [r["metrics"]["acc"] for r in found.runs] == [0.4, 0.3, 0.2]
    with pytest.raises(InvalidArgument):
        registry.search_runs("alpha", "created_at > 'yesterday'")
