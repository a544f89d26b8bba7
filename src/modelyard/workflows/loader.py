"""Where pipeline code lives: a built-in name (the one table below) or `module:attr`."""

from __future__ import annotations

import importlib
import re
from typing import Any

from modelyard.core.errors import InvalidArgument, ModelyardError
from modelyard.workflows.dsl import Pipeline

# Built-in pipelines as (name, "module:attr"): the one table to extend.
BUILTINS: dict[str, str] = {
    "digits-lifecycle": "modelyard.workflows.builtins:digits_lifecycle",
    "continuous-training": "modelyard.workflows.builtins:continuous_training",
}

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def resolve_source(source: str) -> str:
    """The `module:attr` a source names; raises InvalidArgument for neither form."""
    if source in BUILTINS:
        return BUILTINS[source]
    if source.startswith("builtin:") and source[8:] in BUILTINS:
        return BUILTINS[source[8:]]
    if not _REF.match(source):
        raise InvalidArgument(
            f"pipeline source {source!r} is neither a built-in ({', '.join(sorted(BUILTINS))}) "
            "nor an importable 'package.module:attribute' path",
            {"source": source[:300]},
        )
    return source


def load_pipeline(source: str) -> Pipeline:
    """Import the pipeline (a `Pipeline`, or a function returning one)."""
    ref = resolve_source(source)
    module_name, attr = ref.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ModelyardError:
        raise
    except (ImportError, AttributeError) as e:
        raise InvalidArgument(f"cannot import pipeline {ref!r}: {e}; install or put the module "
                              "on the server's PYTHONPATH", {"source": source[:300]}) from e
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise InvalidArgument(f"{ref!r} is a {type(obj).__name__}, not a "
                              "modelyard.workflows.Pipeline", {"source": source[:300]})
    return obj
