"""Validation of what callers hand the registry; each failure says what to fix."""

from __future__ import annotations

import json
import math
import numbers
import operator
import re
import time
from datetime import UTC, datetime
from typing import Any

from modelyard.core.errors import InvalidArgument
from modelyard.core.ids import check_name
from modelyard.registry.models import MetricPoint

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_POINTS = 100_000


def text(value: Any, what: str, max_len: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty) or len(value) > max_len:
        raise InvalidArgument(f"{what} must be a{'' if allow_empty else ' non-empty'} string of "
                              f"at most {max_len} characters", {"field": what})
    return value


def key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise InvalidArgument(f"invalid {what} {str(value)[:100]!r}: use up to 250 letters, digits, "
                              "'_', '.', '-', '/' or spaces, starting with a letter, digit or '_'",
                              {"field": what})
    return value


def json_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument(f"{what} must be an object with string keys", {"field": what})
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{what} must hold only JSON values (no NaN): {e}",
                              {"field": what}) from None
    return value


def params(value: Any) -> dict[str, Any]:
    value = json_dict(value, "params")
    for k in value:
        key(k, "param name")
    return value


def tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidArgument("tags must be an object of strings")
    for k, v in value.items():
        key(k, "tag name")
        if not isinstance(v, str) or len(v) > 5000:
            raise InvalidArgument(f"tag {k!r} must be a string of at most 5000 characters")
    return value


def digest(value: Any) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise InvalidArgument(f"{str(value)[:80]!r} is not a sha256 digest (64 lowercase hex digits)")
    return value


def artifacts(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidArgument("artifacts must map names to sha256 digests, e.g. "
                              "{'model.onnx': '<sha256>'}")
    for name, d in value.items():
        text(name, "artifact name", 500)
        digest(d)
    return value


def alias(value: Any) -> str:
    check_name(value, "alias")
    if value.isdigit() or value == "latest":
        raise InvalidArgument(f"alias {value!r} would read as a version: pick a name such as "
                              "'production' or 'staging'")
    return value


def _integer(step: Any, i: int) -> int:
    try:
        if isinstance(step, bool):
            raise TypeError
        return operator.index(step)  # int, numpy integers
    except TypeError:
        raise InvalidArgument(f"point {i}: step must be an integer, not {step!r}",
                              {"index": i}) from None


def _time(value: Any) -> float:
    if value is None:
        return time.time()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InvalidArgument(f"metric time {value!r} must be epoch seconds or a datetime")


Point = tuple[str, int, float, float]  # key, step, value, epoch seconds


def points(items: Any) -> list[Point]:
    if not isinstance(items, (list, tuple)):
        raise InvalidArgument("points must be a list of (key, step, value, time)")
    if len(items) > MAX_POINTS:
        raise InvalidArgument(f"at most {MAX_POINTS} points per call; send them in batches")
    out: list[Point] = []
    keys: set[str] = set()
    now = time.time()
    for i, p in enumerate(items):
        if isinstance(p, MetricPoint):
            p = (p.key, p.step, p.value, p.time)
        elif isinstance(p, dict):
            p = (p.get("key"), p.get("step", 0), p.get("value"), p.get("time"))
        if not isinstance(p, (list, tuple)) or len(p) not in (3, 4):
            raise InvalidArgument(f"point {i} must be (key, step, value, time)", {"index": i})
        k, step, value = p[0], p[1], p[2]
        t = p[3] if len(p) == 4 else None
        if k not in keys:
            key(k, "metric name")
            keys.add(k)
        if type(step) is not int:
            step = _integer(step, i)
        if abs(step) > 2**62:
            raise InvalidArgument(f"point {i}: step {step} is out of range", {"index": i})
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidArgument(f"point {i}: value of {k!r} must be a number, not "
                                      f"{value!r}", {"index": i})
            value = float(value)
        if not math.isfinite(value):
            raise InvalidArgument(f"point {i}: value of {k!r} must be finite, not {value!r}",
                                  {"index": i})
        t = now if t is None else (t if type(t) is float and math.isfinite(t) else _time(t))
        out.append((k, step, value, t))
    return out
