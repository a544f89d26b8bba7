"""Search spaces: checked once at study creation, sampled define-by-run by Optuna."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from modelyard.core.errors import InvalidArgument
from modelyard.hpo.models import ParamSpec

Check = Callable[[dict[str, Any]], None]


def _bad(name: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"search_space.{name}: {problem}", {"field": f"search_space.{name}"})


def validate(space: dict[str, ParamSpec], known: set[str] | None, check: Check | None) -> None:
    """Raises InvalidArgument naming the first bad parameter.

    `known`: the trainer's hyperparameter names (None: any name, e.g. uploaded code);
    `check(values)`: validates one assignment against the trainer's schema.
    """
    for name, p in space.items():
        if known is not None and name not in known:
            raise _bad(name, f"the trainer has no hyperparameter {name!r}; it has "
                             f"{', '.join(sorted(known))}")
        if p.type == "categorical":
            if not p.choices:
                raise _bad(name, "a categorical parameter needs a non-empty `choices` list")
            if len({repr(c) for c in p.choices}) != len(p.choices):
                raise _bad(name, "`choices` has duplicates")
            values = list(p.choices)
        else:
            if p.low is None or p.high is None:
                raise _bad(name, f"an {p.type} parameter needs `low` and `high`")
            if not (math.isfinite(p.low) and math.isfinite(p.high)):
                raise _bad(name, "`low` and `high` must be finite numbers")
            if p.low > p.high:
                raise _bad(name, f"low ({p.low:g}) is greater than high ({p.high:g}); swap them")
            if p.log and p.low <= 0:
                raise _bad(name, f"a log-scale range needs low > 0 (got {p.low:g})")
            if p.log and p.step is not None:
                raise _bad(name, "give either `log` or `step`, not both")
            if p.choices is not None:
                raise _bad(name, "`choices` is only for categorical parameters")
            if p.type == "int" and not (float(p.low).is_integer() and float(p.high).is_integer()
                                        and (p.step is None or float(p.step).is_integer())):
                raise _bad(name, "an int parameter needs whole-number low, high and step")
            values = [_num(p, p.low), _num(p, p.high)]
        if p.condition is not None:
            parent = space.get(p.condition.param)
            if parent is None or parent.type != "categorical":
                raise _bad(name, f"its condition names {p.condition.param!r}, which is not a "
                                 "categorical parameter of this search space")
            if parent.condition is not None:
                raise _bad(name, "conditions nest one level only: its parent is conditional")
            missing = [v for v in p.condition.values if v not in (parent.choices or [])]
            if missing:
                raise _bad(name, f"condition values {missing} are not choices of "
                                 f"{p.condition.param!r}")
        if check is not None:
            for v in values:
                try:
                    check({name: v})
                except InvalidArgument as e:
                    raise _bad(name, f"the value {v!r} is not valid for the trainer: "
                                     f"{e.message}") from None


def _num(p: ParamSpec, v: float) -> int | float:
    return int(v) if p.type == "int" else float(v)


def suggest(trial: Any, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Samples the active parameters (parents before children) on an Optuna trial."""
    params: dict[str, Any] = {}
    ordered = sorted(space.items(), key=lambda kv: kv[1].condition is not None)
    for name, p in ordered:
        if p.condition is not None and params.get(p.condition.param,
                                                  object()) not in p.condition.values:
            continue
        if p.type == "categorical":
            params[name] = trial.suggest_categorical(name, list(p.choices or []))
        elif p.type == "int":
            params[name] = trial.suggest_int(name, int(p.low or 0), int(p.high or 0),
                                             step=int(p.step or 1), log=p.log)
        else:
            params[name] = trial.suggest_float(name, float(p.low or 0), float(p.high or 0),
                                               step=p.step, log=p.log)
    return params


def grid(space: dict[str, ParamSpec]) -> dict[str, list[Any]]:
    """The grid a grid sampler walks; InvalidArgument when the space is not discrete."""
    out: dict[str, list[Any]] = {}
    for name, p in space.items():
        if p.condition is not None:
            raise _bad(name, "the grid sampler cannot walk conditional parameters; use "
                             "random or tpe")
        if p.type == "categorical":
            out[name] = list(p.choices or [])
        elif p.type == "int" and not p.log:
            out[name] = list(range(int(p.low or 0), int(p.high or 0) + 1, int(p.step or 1)))
        elif p.type == "float" and p.step is not None:
            lo, hi, st = float(p.low or 0), float(p.high or 0), p.step
            out[name] = [round(lo + i * st, 12) for i in range(int((hi - lo) / st + 1e-9) + 1)]
        else:
            raise _bad(name, "the grid sampler needs a discrete space: give a float parameter "
                             "a `step`, or use categorical choices")
        if len(out[name]) > 10_000:
            raise _bad(name, "the grid is too large (over 10,000 values in one dimension)")
    return out
