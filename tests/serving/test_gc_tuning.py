"""The collector tuning of a serving process is process-wide: only a process that is nothing
but a server (`modelyard serve`, `modelyard server`) turns it on; an embedded server leaves
its host's collector as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from modelyard.core.settings import ServingSettings, Settings
from modelyard.server.app import create_app
from modelyard.serving.service import GC_GEN0_THRESHOLD


def test_only_a_server_process_tunes_the_collector(tmp_path: Path) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        gc.set_threshold(700, *before[1:])
        embedded = Settings(home=tmp_path / "embedded", background=True)
        with TestClient(create_app(embedded)) as api:
            assert api.get("/readyz").status_code == 200
            assert gc.get_threshold()[0] == 700
            assert gc.get_freeze_count() == frozen
        server = Settings(home=tmp_path / "server", background=True,
                          serving=ServingSettings(tune_gc=True))
        with TestClient(create_app(server)) as api:
            assert api.get("/readyz").status_code == 200
            assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
            assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

