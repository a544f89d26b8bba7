"""The runtime's public surface is exactly what trainer code is promised."""

from __future__ import annotations

from modelyard import runtime


def test_runtime_exports_exactly_the_trainer_contract() -> None:
    assert set(runtime.__all__) == {
        "Context", "context", "dataset", "flush_metrics", "init_distributed", "load_checkpoint",
        "log_metrics", "save_checkpoint", "save_model", "snapshot",
    }
    assert all(hasattr(runtime, name) for name in runtime.__all__)
