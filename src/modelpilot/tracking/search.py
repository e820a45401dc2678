"""The run filter language: ``metrics.auc > 0.9 and params.model = 'gbm'``.

A small hand-written parser rather than a SQL fragment: user text never reaches the
database (tracking/query.py binds every value), and errors can point at the exact character
that is wrong. Grammar::

    filter  := clause ("and" clause)*
    clause  := field op value
    field   := ("metrics" | "params" | "tags" | "attributes") "." name  |  attribute
    name    := identifier | `back-quoted name`
    op      := = | != | < | <= | > | >=
    value   := number | 'single' or "double" quoted string
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelpilot.errors import InvalidInput

ATTRIBUTES = ("run_id", "name", "status", "start_time", "end_time", "experiment")
_PREFIXES = ("metrics", "params", "tags", "attributes")
_OPS = ("<=", ">=", "!=", "=", "<", ">")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op><=|>=|!=|==|=|<|>)
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<field>(?:[A-Za-z_][\w]*\.)?(?:`[^`]+`|[A-Za-z_][\w\-/:]*))
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    """One comparison: ``column op value`` where column is a search-frame column."""

    column: str
    op: str
    value: float | str


def parse_filter(text: str) -> list[Clause]:
    """Parse a filter string into clauses (all joined by AND).

    >>> parse_filter("metrics.auc > 0.9 and params.depth = '6'")
    [Clause(column='metrics.auc', op='>', value=0.9), Clause(column='params.depth', op='=', value='6')]
    >>> parse_filter("")
    []
    """  # noqa: E501
    tokens = _tokenize(text)
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if clauses:
            kind, word, pos = tokens[i]
            if kind != "field" or word.lower() != "and":
                raise _error(text, pos, "expected 'and' between clauses (only AND is supported)")
            i += 1
        if i + 3 > len(tokens):
            raise _error(text, len(text), "incomplete clause: expected <field> <op> <value>")
        (k1, field, p1), (k2, op, p2), (k3, value, p3) = tokens[i : i + 3]
        if k1 != "field":
            raise _error(text, p1, "expected a field such as metrics.auc or params.lr")
        if k2 != "op":
            raise _error(text, p2, f"expected one of {' '.join(_OPS)}")
        if k3 not in ("number", "string"):
            raise _error(text, p3, "expected a number or a quoted string")
        parsed: float | str = float(value) if k3 == "number" else _unquote(value)
        clauses.append(Clause(_column(text, field, p1), "=" if op == "==" else op, parsed))
        i += 3
    return clauses


def parse_order_by(items: list[str] | tuple[str, ...]) -> list[tuple[str, bool]]:
    """``["metrics.auc DESC", "start_time"]`` -> ``[("metrics.auc", False), ("start_time", True)]``.

    The boolean is "ascending".
    """
    out: list[tuple[str, bool]] = []
    for item in items:
        parts = item.strip().rsplit(None, 1)
        ascending = True
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            ascending = parts[1].upper() == "ASC"
            item = parts[0]
        out.append((_column(item, item.strip(), 0), ascending))
    return out


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise _error(text, start, "unexpected character")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def _column(text: str, field: str, pos: int) -> str:
    prefix, _, name = field.partition(".")
    if not name:
        if field in ATTRIBUTES:
            return field
        raise _error(
            text,
            pos,
            f"unknown field {field!r}: use metrics.<name>, params.<name>, tags.<name> "
            f"or one of {', '.join(ATTRIBUTES)}",
        )
    if prefix not in _PREFIXES:
        raise _error(
            text, pos, f"unknown prefix {prefix!r}: expected one of {', '.join(_PREFIXES)}"
        )
    name = name.strip("`")
    return name if prefix == "attributes" else f"{prefix}.{name}"


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _error(text: str, pos: int, why: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid run filter at character {pos + 1}: {why}.\n  {text}\n  {' ' * pos}^",
        field="filter",
    )
