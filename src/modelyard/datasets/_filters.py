"""Row filters (`where` of a delete or replace), parsed with a real SQL grammar before use.

Lance parses a filter as `SELECT 1 FROM t WHERE <filter>` and silently drops whatever follows the
first complete expression: `1=1; DROP TABLE x` deleted every row, and `a > 3) OR (1=1` deleted
the rows where `a > 3`. So the text is parsed here first, with sqlglot and a dialect that
tokenizes as Lance does (backticks quote names; single or double quotes make strings; no
backslash escapes). It must be exactly one expression made only of expression nodes, and what
Lance receives is that expression written back out (`to_lance`), never the user's text: Lance
then applies exactly the tree that was checked.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp, generator, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from modelyard.core.errors import InvalidArgument

_HINT = ("give one SQL condition over the dataset's columns, e.g. label = 'cat' AND "
         "width > 32 (quote names with backticks, text with single quotes)")

# Nodes that are not part of a condition, though sqlglot parses them where a condition may
# stand: a query, a star, a name given to the result (`a > 3 foo`), a bind parameter.
_REFUSED = (exp.Query, exp.Subquery, exp.Alias, exp.Star, exp.Placeholder, exp.Parameter,
            exp.Command, exp.Window)


class LanceFilter(Dialect):
    """Lance's filter syntax as far as tokens go (DataFusion's generic SQL dialect)."""

    class Tokenizer(tokens.Tokenizer):
        QUOTES = ["'", '"']
        IDENTIFIERS = ["`"]
        STRING_ESCAPES = ["'"]

    class Generator(generator.Generator):
        TRANSFORMS = {**generator.Generator.TRANSFORMS,
                      exp.Array: lambda self, e: f"[{self.expressions(e, flat=True)}]"}
        TYPE_MAPPING = {**generator.Generator.TYPE_MAPPING,
                        exp.DataType.Type.TEXT: "STRING", exp.DataType.Type.VARCHAR: "STRING"}


def to_lance(text: str) -> str:
    """The filter as Lance should receive it; InvalidArgument (field `where`) saying what is
    wrong when `text` is not exactly one complete condition."""
    if not text or not text.strip():
        raise InvalidArgument(f"the filter is empty: {_HINT}", {"field": "where"})
    try:
        if any(t.token_type == tokens.TokenType.SEMICOLON
               for t in LanceFilter().tokenize(text)):
            raise InvalidArgument(f"the filter {text[:200]!r} holds a ';': a filter is one "
                                  f"condition, not statements; {_HINT}", {"field": "where"})
        tree = sqlglot.parse_one(text, dialect=LanceFilter)
    except SqlglotError as e:
        raise InvalidArgument(f"cannot parse the filter {text[:200]!r}: "
                              f"{str(e).splitlines()[0][:200]}; {_HINT}",
                              {"field": "where"}) from None
    for node in tree.walk():
        if isinstance(node, _REFUSED) or not isinstance(
                node, exp.Condition | exp.Identifier | exp.DataType | exp.Var):
            raise InvalidArgument(
                f"the filter {text[:200]!r} is not one condition: "
                f"{node.sql(dialect=LanceFilter)[:100]!r} has no place in it; {_HINT}",
                {"field": "where"})
    return tree.sql(dialect=LanceFilter, comments=False)


def rows_with_ids(row_ids: list[str]) -> str:
    """The filter selecting these row ids, built as a tree (ids are data, never SQL text)."""
    return exp.column("row_id").isin(*row_ids).sql(dialect=LanceFilter)


__all__ = ["LanceFilter", "rows_with_ids", "to_lance"]
