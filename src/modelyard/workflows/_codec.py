"""How step values cross the sandbox boundary without the server ever unpickling anything.

A value made of JSON types plus `bytes` travels as *tagged JSON*: plain JSON, where bytes are
`{"$bytes": "<base64>"}` and a one-key dict whose key starts with `$` is escaped as
`{"$dict": {...}}`. The server parses it with `json` alone, so a hostile step can hand it
nothing worse than a big document (reads are bounded).

Any other value is pickled *inside the sandbox* and stored in the content store as the bytes
it is. The server only ever sees it as an `Opaque` reference: it hands the bytes on to the next
sandboxed step, which unpickles them in its own sandbox, and refuses them to built-in kinds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Prefix of a content-store blob that holds tagged JSON (a step output too big for the
# database column, or one with bytes in it). A pickle starts with b"\x80", never with this.
MAGIC = b"modelyard-json/1\n"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Opaque:
    """A step output that is not JSON: pickled bytes in the content store, never unpickled
    by the server."""

    digest: str
    producer: str = ""

    def __repr__(self) -> str:
        return f"<opaque output {self.digest[:12]} of step {self.producer!r}>"


class NotJson(TypeError):
    """The value holds something tagged JSON cannot carry (a numpy array, an object...)."""


def _enc(v: Any, depth: int) -> Any:
    if depth > 200:
        raise NotJson("nested too deep")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, Opaque):  # only the server holds these (a mapped step's elements)
        return {"$opaque": v.digest}
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise NotJson("NaN and infinity are not JSON")
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [_enc(x, depth + 1) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise NotJson("dict keys must be strings")
        out = {k: _enc(x, depth + 1) for k, x in v.items()}
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$dict": out}
        return out
    raise NotJson(f"a {type(v).__name__} is not JSON")


Resolve = Callable[[str], Any]


def _dec(v: Any, opaque: Resolve | None) -> Any:
    if isinstance(v, list):
        return [_dec(x, opaque) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            (k, x), = v.items()
            if k == "$bytes" and isinstance(x, str):
                try:
                    return base64.b64decode(x, validate=True)
                except ValueError:
                    raise NotJson("a $bytes value is not base64") from None
            if k == "$dict" and isinstance(x, dict):
                return {kk: _dec(xx, opaque) for kk, xx in x.items()}
            if k == "$opaque":
                if opaque is None or not isinstance(x, str) or not _HEX64.match(x):
                    raise NotJson("an $opaque reference comes only from the server")
                return opaque(x)
        return {k: _dec(x, opaque) for k, x in v.items()}
    return v


def to_tagged(value: Any) -> Any:
    """The JSON structure of `value` (what `encode` writes); raises NotJson."""
    return _enc(value, 0)


def from_tagged(obj: Any, opaque: Resolve | None = None) -> Any:
    """The value of a tagged JSON structure; `opaque` resolves `$opaque` references, which are
    refused when it is None (nothing a step sends may name a stored blob)."""
    return _dec(obj, opaque)


def encode(value: Any) -> str:
    """Tagged JSON text of `value`; raises NotJson when it holds anything else."""
    return json.dumps(_enc(value, 0), sort_keys=True, separators=(",", ":"))


def decode(text: str | bytes, opaque: Resolve | None = None) -> Any:
    """The value back from tagged JSON (json.loads only: safe on hostile input); raises
    NotJson or ValueError for a malformed document."""
    try:
        return _dec(json.loads(text), opaque)
    except RecursionError:
        raise NotJson("nested too deep") from None


def opaque_digests(value: Any) -> set[str]:
    """The digests of every Opaque value inside `value`."""
    if isinstance(value, Opaque):
        return {value.digest}
    if isinstance(value, (list, tuple)):
        return set().union(*(opaque_digests(x) for x in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(opaque_digests(x) for x in value.values())) if value else set()
    return set()


def is_plain(text: str) -> bool:
    """True when the tagged JSON carries no tags (it can be stored and shown as it is)."""
    return not any(t in text for t in ('"$bytes"', '"$dict"', '"$opaque"'))


def digest(value: Any) -> str:
    """A stable digest of a value for cache keys; an Opaque value is its content digest."""
    if isinstance(value, Opaque):
        return value.digest
    try:
        text = encode(value)
    except NotJson:
        text = repr(value)  # trusted in-server values only: opaque ones are handled above
    return hashlib.sha256(text.encode()).hexdigest()
