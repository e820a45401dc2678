"""Run search in SQL: the filter language (tracking/search.py) and ORDER BY as one query.

Why: loading every run of an experiment per page takes minutes at 100,000 runs (MLflow users
report it at 30,000: mlflow#2730). Here each referenced metric, param or tag is one LEFT JOIN
(metrics on ``run_latest_metrics``, one row per run and key), the comparisons go into WHERE,
and the page is ``LIMIT/OFFSET`` over a total order, so a page costs one indexed query
(benchmarks/search.py).

Semantics (the same on SQLite and PostgreSQL, and as the DataFrame version had):

- a run without the field never matches, whatever the operator (SQL's NULL);
- a number compared with a param, tag or attribute compares numerically, and text that is not
  a number never matches; times (``start_time``, ``end_time``) compare as epoch milliseconds
  with a number, or with an ISO time in quotes;
- text compares and sorts by code point (``COLLATE "C"`` on PostgreSQL);
- runs without an ordering field sort last, ascending or descending; ties keep the default
  order, newest start first, then run id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    and_,
    case,
    cast,
    false,
    literal,
    select,
)
from sqlalchemy import ColumnElement as Column

from modelpilot.errors import InvalidInput, shown
from modelpilot.store.schema import experiments, run_latest_metrics, run_params, run_tags, runs
from modelpilot.tracking.search import Clause, parse_filter, parse_order_by

_TIMES = {"start_time": runs.c.start_ms, "end_time": runs.c.end_ms}
_TEXTS = {
    "run_id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "experiment": experiments.c.name,
    "parent_run_id": runs.c.parent_run_id,
}
# Text that reads as a decimal number (what float() accepts, less inf/nan and spaces).
_NUMBER_RE = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
# The same on SQLite: text with a digit that matches none of these.
_NOT_A_NUMBER_GLOBS = (
    "*[^0-9.eE+-]*",  # another character
    "*.*.*",  # two dots
    "*[eE]*[eE]*",  # two exponents
    "*[eE]*.*",  # a dot in the exponent
    "*[^eE][+-]*",  # a sign neither first nor after the exponent mark
    "*[eE]",  # an exponent without digits
    "*[eE][+-]",
    "[eE]*",  # no mantissa
    "[+-][eE]*",
    ".[eE]*",
    "[+-].[eE]*",
)


class RunQuery:
    """The FROM and WHERE of one search; a join is added the first time a field is used."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.source: Any = runs.join(experiments)
        self.conditions: list[ColumnElement[bool]] = []
        self._joined: dict[str, Column[Any]] = {}

    def field(self, column: str) -> Column[Any]:
        """The SQL expression for a search column (joining its table once)."""
        if column in _TIMES:
            return _TIMES[column]
        if column in _TEXTS:
            return _TEXTS[column]
        if column not in self._joined:
            prefix, _, key = column.partition(".")
            table = {"metrics": run_latest_metrics, "params": run_params, "tags": run_tags}[prefix]
            alias = table.alias(f"f{len(self._joined)}")
            self.source = self.source.outerjoin(
                alias, and_(alias.c.run_id == runs.c.id, alias.c.key == key)
            )
            self._joined[column] = alias.c.value
        return self._joined[column]

    def where(self, clause: Clause) -> None:
        """Add one comparison."""
        self.conditions.append(self._condition(clause))

    def _condition(self, clause: Clause) -> ColumnElement[bool]:
        expr, value = self.field(clause.column), clause.value
        if clause.column.startswith("metrics."):
            if isinstance(value, str):
                return false()  # a metric is a number: text never equals or orders with it
            return _compare(expr, clause.op, value)
        if clause.column in _TIMES:
            return _compare(expr, clause.op, _epoch_ms(clause.column, value))
        if isinstance(value, float):
            return _compare(self._numeric(expr), clause.op, value)
        return _compare(self.text(expr), clause.op, value)

    def _numeric(self, expr: Column[Any]) -> Column[Any]:
        """Text as a number where it reads as one, else NULL (never matches)."""
        is_number: ColumnElement[Any]
        if self.dialect == "postgresql":
            is_number = expr.op("~")(_NUMBER_RE)
        else:  # SQLite has no regex: the same shape, told by what it must and must not match
            is_number = and_(
                expr.op("GLOB")("*[0-9]*"),
                *(~expr.op("GLOB")(pattern) for pattern in _NOT_A_NUMBER_GLOBS),
            )
        return case((is_number, cast(expr, Float)), else_=None)

    def text(self, expr: Column[Any]) -> Column[Any]:
        """Text compared by code point on both databases."""
        return expr.collate("C") if self.dialect == "postgresql" else expr


def search_run_ids(
    conn: Connection,
    dialect: str,
    experiment_id: int | None,
    filter: str,
    order_by: Sequence[str],
    *,
    offset: int,
    limit: int,
) -> list[str]:
    """Ids of the runs on one page, in order (``limit`` + 1 asked for by callers that want to
    know whether a next page exists)."""
    clauses = parse_filter(filter)
    ordering = parse_order_by(list(order_by))
    q = RunQuery(dialect)
    if experiment_id is not None:
        q.conditions.append(runs.c.experiment_id == experiment_id)
    for clause in clauses:
        q.where(clause)
    keys: list[Any] = []
    for column, ascending in ordering:
        expr = q.field(column)
        if column in _TEXTS or column.startswith(("params.", "tags.")):
            expr = q.text(expr)
        keys.append(expr.is_(None))  # missing values last, in both directions
        keys.append(expr.asc() if ascending else expr.desc())
    keys += [runs.c.start_ms.desc(), runs.c.id.asc()]
    page: Select[Any] = (
        select(runs.c.id)
        .select_from(q.source)
        .where(*q.conditions)
        .order_by(*keys)
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(page).scalars())


def _compare(expr: Column[Any], op: str, value: object) -> ColumnElement[bool]:
    right = literal(value)
    condition: ColumnElement[bool] = {
        "=": lambda: expr == right,
        "!=": lambda: expr != right,
        "<": lambda: expr < right,
        "<=": lambda: expr <= right,
        ">": lambda: expr > right,
        ">=": lambda: expr >= right,
    }[op]()
    return and_(expr.is_not(None), condition)


def _epoch_ms(column: str, value: float | str) -> int:
    """A time bound as epoch ms: a number is taken as ms, quoted text as an ISO time (UTC
    when it has no zone)."""
    if isinstance(value, float):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except ValueError as exc:
        raise InvalidInput(
            f"Run filter on {column}: expected epoch milliseconds or an ISO time such as "
            f"'2026-01-31T12:00'; got {shown(value)}.",
            field="filter",
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


__all__ = ["RunQuery", "search_run_ids"]
