"""Identifiers and names."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime

from modelyard.core.errors import InvalidArgument

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def new_id(prefix: str) -> str:
    """A sortable, unique id: prefix, millisecond time, randomness (e.g. `job_0193ab..`)."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_name(value: str, what: str = "name") -> str:
    """Names of projects, datasets, models...: lowercase letters, digits, `.`, `_`, `-`."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise InvalidArgument(
            f"invalid {what} {value!r}: use 1-100 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'",
            {"field": what, "value": str(value)[:200]},
        )
    return value
