"""Rows outside the model's input domain: answered as usual, flagged in the log and counted.

A model answers an unseen category, a number far outside what it was trained on, or a
missing value where its training data never had one with confidence it has not earned.
Refusing such rows would break callers on a legitimate new value, so the data plane answers
them and records which ones, which fields and which kind (``unseen_category``,
``out_of_range``, ``unexpected_null``) against the domain recorded in the signature
(:class:`modelpilot.models.signature.InputDomain`, the training data's when a dataset was
linked, which also defines "far outside"). The prediction log keeps the flags
(:mod:`modelpilot.predictions.domain_fields`); ``/metrics`` counts rows, and values per column
and kind.

Runs after every predict call, so it works on the batch's rows at once: one float matrix
(which the prediction log then reuses instead of building its own) and two comparisons for
the numeric columns (which also catch NaN when every ranged column is never missing, so the
usual null check costs no extra pass), one transpose and one set lookup per value for
category columns; names and per-column counts are built only when a row is outside.
Measured with benchmarks/domain_flags.py (CPU time, shared 2-core machine; the version
without kinds or null checks in parentheses, same machine): 32 rows of 20 numeric columns
(benchmarks/serving.py's shape) ~30 us (~30), one row ~9 us (~9); 32 mixed rows of two
numbers and two categories ~32 us (~40), one row ~20 us (~16). A batch with a value outside
costs ~20-25 us more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot.matrix import float_matrix
from modelpilot.models.signature import InputDomain
from modelpilot.predictions.domain_fields import DomainFlagKind, format_domain_fields
from modelpilot.serving.batching import Pending
from modelpilot.serving.runtime import ModelRuntime


@dataclass(frozen=True)
class DomainFlags:
    """Per row of a batch: whether it is outside the domain, and the fields that are."""

    is_outside: np.ndarray  # bool, one per row
    fields: list[str | None]  # "age:out_of_range,plan:unseen_category"; None when inside
    count: int  # rows outside
    matrix: np.ndarray | None = None  # the rows as float64 (all-numeric models): the log reuses it
    values: tuple[tuple[str, DomainFlagKind, int], ...] = ()  # (column, kind, values flagged)


def flag_batch(
    runtime: ModelRuntime, batch: list[Pending], matrix: np.ndarray | None = None
) -> DomainFlags | None:
    """Flags for every row of a predict call (None when the signature records no domain);
    ``matrix`` is the batch as float64 when the model already took it as one."""
    domain = runtime.model.signature.domain
    if domain is None:
        return None
    if matrix is not None and runtime.all_numeric:  # the matrix is the rows
        return _all_inside(domain, matrix) or flag_rows(
            domain, matrix, all_numeric=True, matrix=matrix
        )
    rows = [row for pending in batch for row in pending.rows]
    return flag_rows(domain, rows, all_numeric=runtime.all_numeric, matrix=matrix)


def _all_inside(domain: InputDomain, matrix: np.ndarray) -> DomainFlags | None:
    """The usual batch of an all-numeric model, every value within range and none missing,
    in four array operations; None when that does not hold or this shortcut does not cover
    the domain's checks, and :func:`flag_rows` decides.

    A NaN fails both comparisons, so a batch with a missing value goes to flag_rows, which
    knows whether the column may be missing."""
    positions, low, high = domain.numeric_limits
    _, null_positions = domain.null_plan  # the null checks a range check does not cover
    if not positions or null_positions or domain.category_positions:
        return None
    values = matrix if len(positions) == matrix.shape[1] else matrix[:, positions]
    inside = values >= low
    inside &= values <= high
    if not inside.all():
        return None
    rows = len(matrix)
    return DomainFlags(np.zeros(rows, dtype=bool), [None] * rows, 0, matrix)


# One check's result: (row positions it covers, its kind, outside per row and position, and
# for a range check that also flags NaN, the values, to tell the two kinds apart later).
_Part = tuple[tuple[int, ...], DomainFlagKind, np.ndarray, np.ndarray | None]


def flag_rows(
    domain: InputDomain,
    rows: Sequence[Sequence[Any]] | np.ndarray,
    *,
    all_numeric: bool,
    matrix: np.ndarray | None = None,
) -> DomainFlags:
    """Flags for rows whose values are in signature order.

    >>> from modelpilot.models.signature import InputDomain
    >>> domain = InputDomain(
    ...     ("age", "plan"), {"age": (20.0, 60.0)}, {"plan": frozenset({"pro"})}, frozenset({"age"})
    ... )
    >>> rows = [[30, "pro"], [500, "pro"], [30, "gold"], [None, "pro"]]
    >>> flags = flag_rows(domain, rows, all_numeric=False)
    >>> flags.is_outside.tolist(), flags.count
    ([False, True, True, True], 3)
    >>> flags.fields
    [None, 'age:out_of_range', 'plan:unseen_category', 'age:unexpected_null']
    >>> flags.values
    (('age', 'out_of_range', 1), ('age', 'unexpected_null', 1), ('plan', 'unseen_category', 1))
    """
    if not len(rows):  # (rows may be the batch's matrix)
        return DomainFlags(np.zeros(0, dtype=bool), [], 0, None)
    if matrix is None and all_numeric:
        matrix = rows if isinstance(rows, np.ndarray) else float_matrix(rows)
    elif not all_numeric:
        matrix = None
    columns = None if matrix is not None else list(zip(*rows, strict=True))  # one transpose
    parts: list[_Part] = []
    positions, low, high = domain.numeric_limits
    nan_in_range, null_positions = domain.null_plan
    if positions:
        if matrix is not None:
            values = matrix if len(positions) == matrix.shape[1] else matrix[:, positions]
        else:  # None (a missing number) becomes NaN
            assert columns is not None
            values = np.array([columns[p] for p in positions], dtype=np.float64).T
        if nan_in_range:  # NaN fails both comparisons: one pass flags it with the range
            parts.append((positions, "out_of_range", ~((values >= low) & (values <= high)), values))
        else:
            parts.append((positions, "out_of_range", (values < low) | (values > high), None))
    if domain.category_positions:
        assert columns is not None  # all-numeric rows have no category column
        unseen = [
            [v is not None and v not in accepted for v in columns[p]]
            for p, accepted in domain.category_positions
        ]
        where = tuple(p for p, _ in domain.category_positions)
        parts.append((where, "unseen_category", np.array(unseen, dtype=bool).T, None))
    if null_positions:
        missing = _nulls(null_positions, columns, matrix)
        parts.append((null_positions, "unexpected_null", missing, None))
    if not parts:  # a domain with nothing to check (e.g. only free-text columns)
        return DomainFlags(np.zeros(len(rows), dtype=bool), [None] * len(rows), 0, matrix)
    outside = parts[0][2] if len(parts) == 1 else np.hstack([p[2] for p in parts])
    is_outside = np.asarray(outside.any(axis=1), dtype=bool)
    count = int(np.count_nonzero(is_outside))
    if not count:
        return DomainFlags(is_outside, [None] * len(rows), 0, matrix)
    return _named(domain, parts, is_outside, count, matrix)


def _named(
    domain: InputDomain,
    parts: list[_Part],
    is_outside: np.ndarray,
    count: int,
    matrix: np.ndarray | None,
) -> DomainFlags:
    """Rare: name the fields of the flagged rows, and count flagged values per column."""
    checks: list[tuple[tuple[int, ...], DomainFlagKind, np.ndarray]] = []
    for positions, kind, outside, values in parts:
        if values is None:
            checks.append((positions, kind, outside))
        else:  # a range check that flagged NaN too: split the kinds
            nan = np.isnan(values)
            checks.append((positions, "out_of_range", outside & ~nan))
            checks.append((positions, "unexpected_null", outside & nan))
    flags = [(domain.columns[p], kind) for positions, kind, _ in checks for p in positions]
    table = np.hstack([outside for _, _, outside in checks])
    fields: list[str | None] = [None] * len(is_outside)
    for i in np.flatnonzero(is_outside).tolist():
        row = table[i].tolist()
        fields[i] = format_domain_fields(f for f, o in zip(flags, row, strict=True) if o)
    per_flag = table.sum(axis=0).tolist()
    counted = tuple((c, k, int(n)) for (c, k), n in zip(flags, per_flag, strict=True) if n)
    return DomainFlags(is_outside, fields, count, matrix, counted)


def _nulls(
    positions: tuple[int, ...], columns: list[tuple[Any, ...]] | None, matrix: np.ndarray | None
) -> np.ndarray:
    """Missing per row at ``positions`` (NaN in numbers, None elsewhere)."""
    if matrix is not None:
        values = matrix if len(positions) == matrix.shape[1] else matrix[:, positions]
        return np.asarray(np.isnan(values), dtype=bool)
    assert columns is not None
    missing = [[v is None or v != v for v in columns[p]] for p in positions]
    return np.array(missing, dtype=bool).T
