"""Executors by name: the one table to extend with a new backend."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from modelyard.core.errors import InvalidArgument
from modelyard.training.executors.base import Executor, Launch, Status

if TYPE_CHECKING:
    from modelyard.core.settings import Settings
    from modelyard.sandbox import Sandbox

EXECUTORS = {
    "local": "modelyard.training.executors.local:LocalExecutor",
    "ray": "modelyard.training.executors.ray:RayExecutor",
}


def open_executor(settings: Settings, sandbox: Sandbox | None = None) -> Executor:
    """The configured executor; one that runs user code on this machine gets `sandbox`."""
    name = settings.training.executor
    if name not in EXECUTORS:
        raise InvalidArgument(f"unknown training executor {name!r}: use one of "
                              f"{', '.join(sorted(EXECUTORS))}")
    module, attr = EXECUTORS[name].split(":")
    factory = getattr(import_module(module), attr)
    if sandbox is not None and factory.runs_user_code_here:
        return factory(settings, sandbox=sandbox)  # type: ignore[no-any-return]
    return factory(settings)  # type: ignore[no-any-return]


__all__ = ["EXECUTORS", "Executor", "Launch", "Status", "open_executor"]
