"""Run search language: filters, sort keys, page tokens and field selection (no SQL here).

Filter, as a string: clauses joined by `and`, e.g.
`metrics.accuracy > 0.9 and params.optimizer = 'adam' and tags.team = "vision" and status = 'finished'`;
or as a list of `{"field": "metrics.accuracy", "op": ">", "value": 0.9}`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidArgument

OPS = ("=", "!=", "<", "<=", ">", ">=", "like")
SCOPES = ("metrics", "params", "tags", "attributes")
ATTRIBUTES = ("id", "status", "user", "job_id", "code_hash", "dataset_snapshot", "experiment",
              "created_at", "ended_at")
_CLAUSE = re.compile(
    r"""^\s*(?:(?P<scope>metrics|params|tags|attributes|attr|metric|param|tag)\.)?
        (?P<key>`[^`]+`|[A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*
        (?P<op><=|>=|!=|==|=|<|>|(?i:like))\s*
        (?P<value>'[^']*'|"[^"]*"|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$""",
    re.VERBOSE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_SCOPE_ALIASES = {"attr": "attributes", "metric": "metrics", "param": "params", "tag": "tags"}


@dataclass(frozen=True)
class Clause:
    scope: str  # metrics | params | tags | attributes
    key: str
    op: str
    value: str | float


@dataclass(frozen=True)
class SortKey:
    scope: str
    key: str
    descending: bool


def _field(name: str) -> tuple[str, str]:
    scope, _, key = name.partition(".")
    scope = _SCOPE_ALIASES.get(scope, scope)
    if not key:
        scope, key = "attributes", name
    if scope not in SCOPES:
        raise InvalidArgument(f"unknown field {name!r}: use metrics.<key>, params.<key>, "
                              f"tags.<key> or one of {', '.join(ATTRIBUTES)}")
    if scope == "attributes" and key not in ATTRIBUTES:
        raise InvalidArgument(f"unknown run attribute {key!r}: use one of {', '.join(ATTRIBUTES)}")
    return scope, key


def _check(c: Clause) -> Clause:
    if c.scope == "metrics" and not isinstance(c.value, float):
        raise InvalidArgument(f"metric filter on {c.key!r} needs a number, not {c.value!r}")
    if c.op == "like" and not isinstance(c.value, str):
        raise InvalidArgument("'like' needs a quoted pattern such as 'adam%'")
    if c.scope == "tags" and isinstance(c.value, float):
        return Clause(c.scope, c.key, c.op, _num_text(c.value))
    return c


def _num_text(v: float) -> str:
    return str(int(v)) if v.is_integer() else str(v)


def parse_filter(spec: str | list[dict[str, Any]] | None) -> list[Clause]:
    """Clauses of a filter; raises InvalidArgument naming the clause it cannot read."""
    if spec is None or spec == "" or spec == []:
        return []
    clauses: list[Clause] = []
    if isinstance(spec, str):
        for part in _AND.split(spec.strip()):
            m = _CLAUSE.match(part)
            if not m:
                raise InvalidArgument(
                    f"cannot read filter clause {part[:200]!r}: write e.g. "
                    "\"metrics.accuracy > 0.9 and params.optimizer = 'adam'\"")
            raw = m["value"]
            value: str | float = raw[1:-1] if raw[0] in "'\"" else float(raw)
            scope, key = _field(f"{m['scope'] or 'attributes'}.{m['key'].strip('`')}")
            op = "=" if m["op"] == "==" else m["op"].lower()
            clauses.append(_check(Clause(scope, key, op, value)))
        return clauses
    if not isinstance(spec, list):
        raise InvalidArgument("filter must be a string or a list of {field, op, value}")
    for item in spec:
        if not isinstance(item, dict) or "field" not in item or "value" not in item:
            raise InvalidArgument(f"filter item {str(item)[:200]} needs 'field', 'op' and 'value'")
        op = str(item.get("op", "=")).lower()
        op = "=" if op == "==" else op
        if op not in OPS:
            raise InvalidArgument(f"unknown filter operator {op!r}: use one of {', '.join(OPS)}")
        raw_value = item["value"]
        if isinstance(raw_value, bool) or not isinstance(raw_value, (int, float, str)):
            raise InvalidArgument(f"filter value {raw_value!r} must be a number or a string")
        value = float(raw_value) if isinstance(raw_value, (int, float)) else raw_value
        scope, key = _field(str(item["field"]))
        clauses.append(_check(Clause(scope, key, op, value)))
    return clauses


def parse_order_by(spec: list[str] | None) -> list[SortKey]:
    keys = []
    for item in spec or []:
        parts = item.strip().split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise InvalidArgument(f"cannot read order_by {item!r}: write e.g. 'metrics.accuracy desc'")
        scope, key = _field(parts[0])
        keys.append(SortKey(scope, key, len(parts) == 2 and parts[1].lower() == "desc"))
    return keys


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["o"]
        if not isinstance(offset, int) or not 0 <= offset <= 2**53:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidArgument("page_token is not one this server gave out; start again without it") from None


def select_fields(run: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The run with only `fields` (`id` is always kept); dotted names pick one key."""
    if not fields:
        return run
    out: dict[str, Any] = {"id": run["id"]}
    for f in fields:
        scope, _, key = f.partition(".")
        if key and scope in ("metrics", "params", "tags"):
            part = out.setdefault(scope, {})
            if key in run[scope]:
                part[key] = run[scope][key]
        elif f in run:
            out[f] = run[f]
        else:
            raise InvalidArgument(f"unknown field {f!r}: use a run attribute, or metrics.<key>, "
                                  "params.<key>, tags.<key>")
    return out
