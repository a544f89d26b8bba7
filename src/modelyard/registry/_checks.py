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

from modelyard.core.errors import InvalidArgument, PayloadTooLarge
from modelyard.core.ids import check_name
from modelyard.registry.models import MetricPoint

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_POINTS = 100_000
# What one run or version may hold. A run is read whole by every listing and search, so one
# 60 MB param made `GET .../runs` 64 MB; MLflow's 8000-character param values are a known size.
MAX_PARAM_CHARS = 8000  # one param's value, as JSON
MAX_ENTRIES = 1000  # params or tags of a run
MAX_TAG_CHARS = 5000
_JSON_LIMITS = {"metrics": 64 * 1024, "params": 1024 * 1024, "signature": 1024 * 1024,
                "preprocessing": 16 * 1024 * 1024}  # a text model's vocabulary lives there
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(value: Any, what: str, max_len: int, allow_empty: bool = False) -> str:
    """A one-line string: no NUL (PostgreSQL cannot store it) nor other control characters."""
    if not isinstance(value, str) or (not value and not allow_empty) or len(value) > max_len:
        raise InvalidArgument(f"{what} must be a{'' if allow_empty else ' non-empty'} string of "
                              f"at most {max_len} characters", {"field": what})
    if _CONTROL.search(value):
        raise InvalidArgument(f"{what} {value[:100]!r} holds a control character (NUL, newline, "
                              "tab...): use printable text", {"field": what})
    return value


def key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise InvalidArgument(f"invalid {what} {str(value)[:100]!r}: use up to 250 letters, digits, "
                              "'_', '.', '-', '/' or spaces, starting with a letter, digit or '_'",
                              {"field": what})
    return value


def json_dict(value: Any, what: str) -> dict[str, Any]:
    """A JSON object of at most `_JSON_LIMITS[what]` bytes (1 MB unless listed there)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument(f"{what} must be an object with string keys", {"field": what})
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{what} must hold only JSON values (no NaN): {e}",
                              {"field": what}) from None
    limit = _JSON_LIMITS.get(what, 1024 * 1024)
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes of JSON, more than the {limit} a "
                              f"{what} may hold: store large data as an artifact",
                              {"field": what, "limit": limit})
    return value


def _entries(value: dict[str, Any], what: str) -> None:
    if len(value) > MAX_ENTRIES:
        raise PayloadTooLarge(f"a run holds at most {MAX_ENTRIES} {what}, not {len(value)}",
                              {"field": what, "limit": MAX_ENTRIES})


def params(value: Any) -> dict[str, Any]:
    value = json_dict(value, "params")
    _entries(value, "params")
    for k, v in value.items():
        key(k, "param name")
        encoded = json.dumps(v)
        if len(encoded) > MAX_PARAM_CHARS:
            raise InvalidArgument(f"param {k!r} is longer than {MAX_PARAM_CHARS} characters as "
                                  "JSON: store large values as an artifact",
                                  {"field": f"params.{k}", "limit": MAX_PARAM_CHARS})
        if isinstance(v, str) and "\x00" in v:  # kept raw for filters; PostgreSQL refuses NUL
            raise InvalidArgument(f"param {k!r} holds a NUL character", {"field": f"params.{k}"})
    return value


def tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidArgument("tags must be an object of strings", {"field": "tags"})
    _entries(value, "tags")
    for k, v in value.items():
        key(k, "tag name")
        if not isinstance(v, str) or len(v) > MAX_TAG_CHARS or "\x00" in v:
            raise InvalidArgument(f"tag {k!r} must be a string of at most {MAX_TAG_CHARS} "
                                  "characters, without NUL", {"field": f"tags.{k}",
                                                              "limit": MAX_TAG_CHARS})
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
