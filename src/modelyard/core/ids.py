"""Identifiers and names."""

from __future__ import annotations

import os
import random
import re
import secrets
import threading
import time
from datetime import UTC, datetime

from modelyard.core.errors import InvalidArgument

_id_lock = threading.Lock()
_last_us = 0
# The random part of an id needs to be unpredictable across processes, not secret (tokens come
# from `secrets` themselves): a Mersenne Twister seeded from the OS, seeded again in a forked
# child, costs a tenth of a `secrets` call (an urandom read per id on the request path).
_random = random.Random(secrets.randbits(128))
os.register_at_fork(after_in_child=lambda: _random.seed(secrets.randbits(128)))
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time: prefix, microseconds, randomness.

    Within one process ids are strictly increasing (two ids in the same microsecond still
    sort in creation order), so "newest first" lists can order by id.
    """
    global _last_us
    with _id_lock:
        _last_us = max(time.time_ns() // 1000, _last_us + 1)
        stamp = _last_us
        noise = _random.getrandbits(40)
    return f"{prefix}_{stamp:014x}{noise:010x}"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def is_name(value: object) -> bool:
    """Whether `value` is a valid name of a project, dataset, model... (see `check_name`)."""
    return isinstance(value, str) and bool(_NAME.match(value)) and ".." not in value


def check_name(value: str, what: str = "name") -> str:
    """Names of projects, datasets, models...: lowercase letters, digits, `.`, `_`, `-`."""
    if not is_name(value):
        raise InvalidArgument(
            f"invalid {what} {value!r}: use 1-100 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'",
            {"field": what, "value": str(value)[:200]},
        )
    return value
