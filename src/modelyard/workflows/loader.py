"""Where pipeline code lives: modelyard's own built-ins (the one table below), imported by the
server because they are modelyard's code; every other pipeline is a code package the user
uploads, loaded in the sandbox (`_runner.SandboxRunner.load`), never imported here."""

from __future__ import annotations

import importlib
from typing import Any

from modelyard.core.errors import InvalidArgument
from modelyard.workflows.dsl import Pipeline

# Built-in pipelines as (name, "module:attr"): the one table to extend.
BUILTINS: dict[str, str] = {
    "digits-lifecycle": "modelyard.workflows.builtins:digits_lifecycle",
    "continuous-training": "modelyard.workflows.builtins:continuous_training",
}

HOW_TO_UPLOAD = ("upload your pipeline as a code package instead: `modelyard pipeline register "
                 "DIR_OR_ARCHIVE --entry module:attr` (CLI), `client.workflows.register_package"
                 "(path, entry)` (SDK) or POST .../pipelines/packages?entry=module:attr with the "
                 ".zip or .tar.gz as the body")


def builtin_name(source: str) -> str | None:
    """The built-in a source names (`digits-lifecycle` or `builtin:digits-lifecycle`), or None."""
    name = source[8:] if source.startswith("builtin:") else source
    return name if name in BUILTINS else None


def resolve_source(source: str) -> str:
    """The `module:attr` of a built-in; raises InvalidArgument for anything else."""
    name = builtin_name(source)
    if name is None:
        raise InvalidArgument(
            f"pipeline source {source[:100]!r} is not a built-in pipeline "
            f"({', '.join(sorted(BUILTINS))}); the server imports no other code: "
            + HOW_TO_UPLOAD, {"source": source[:300]})
    return BUILTINS[name]


def load_builtin(source: str) -> Pipeline:
    """Import a built-in pipeline (a `Pipeline`, or a function returning one)."""
    module_name, attr = resolve_source(source).split(":", 1)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):  # a bug in the table above
        raise TypeError(f"built-in pipeline {source!r} is a {type(obj).__name__}")
    return obj
