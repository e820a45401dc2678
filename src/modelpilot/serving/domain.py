"""Rows outside the model's input domain: answered as usual, flagged in the log and counted.

A model answers an unseen category or a number far outside what it was trained on with
confidence it has not earned. Refusing such rows would break callers on a legitimate new
value, so the data plane answers them and records which ones (and which fields) were outside
the domain recorded in the signature (:class:`modelpilot.models.signature.InputDomain`, which
also defines "far outside"). Monitoring and people read the flag; ``/metrics`` counts it.

Runs after every predict call, so it works on the batch's rows at once: one float matrix
(which the prediction log then reuses instead of building its own) and two comparisons for
the numeric columns, one set lookup per row for category columns. Measured on 32 rows of 20
numeric columns (benchmarks/serving.py's shape): ~19 us a batch, ~12 of them the matrix;
~4 us for a one-row batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot.models.signature import InputDomain
from modelpilot.serving.batching import Pending
from modelpilot.serving.runtime import ModelRuntime


@dataclass(frozen=True)
class DomainFlags:
    """Per row of a batch: whether it is outside the domain, and the fields that are."""

    is_outside: np.ndarray  # bool, one per row
    fields: list[str | None]  # comma-separated names of the outside fields, None when inside
    count: int  # rows outside
    matrix: np.ndarray | None = None  # the rows as float64 (all-numeric models): the log reuses it


def flag_batch(runtime: ModelRuntime, batch: list[Pending]) -> DomainFlags | None:
    """Flags for every row of a predict call (None when the signature records no domain)."""
    domain = runtime.model.signature.domain
    if domain is None:
        return None
    rows = [row for pending in batch for row in pending.rows]
    return flag_rows(domain, rows, all_numeric=runtime.all_numeric)


def flag_rows(
    domain: InputDomain, rows: Sequence[Sequence[Any]], *, all_numeric: bool
) -> DomainFlags:
    """Flags for rows whose values are in signature order.

    >>> from modelpilot.models.signature import InputDomain
    >>> domain = InputDomain(("age", "plan"), {"age": (20.0, 60.0)}, {"plan": frozenset({"pro"})})
    >>> flags = flag_rows(domain, [[30, "pro"], [500, "pro"], [30, "gold"]], all_numeric=False)
    >>> flags.is_outside.tolist(), flags.fields, flags.count
    ([False, True, True], [None, 'age', 'plan'], 2)
    """
    parts: list[tuple[tuple[int, ...], np.ndarray]] = []  # (row positions, outside per row)
    positions, low, high = domain.numeric_limits
    matrix = np.array(rows, dtype=np.float64) if all_numeric else None
    if positions:
        if matrix is not None:
            values = matrix if len(positions) == matrix.shape[1] else matrix[:, positions]
        else:
            values = np.array([[_number(row[p]) for p in positions] for row in rows])
        parts.append((positions, (values < low) | (values > high)))
    for position, accepted in domain.category_positions:
        unseen = [row[position] is not None and row[position] not in accepted for row in rows]
        parts.append(((position,), np.array(unseen, dtype=bool).reshape(-1, 1)))
    if not parts:  # a domain with nothing to check (e.g. only free-text columns)
        return DomainFlags(np.zeros(len(rows), dtype=bool), [None] * len(rows), 0, matrix)
    outside = parts[0][1] if len(parts) == 1 else np.hstack([o for _, o in parts])
    is_outside = np.asarray(outside.any(axis=1), dtype=bool)
    count = int(np.count_nonzero(is_outside))
    fields: list[str | None] = [None] * len(rows)
    if count:  # rare: name the fields of the flagged rows only
        names = [domain.columns[p] for pos, _ in parts for p in pos]
        for i in np.flatnonzero(is_outside).tolist():
            fields[i] = ",".join(n for n, o in zip(names, outside[i].tolist(), strict=True) if o)
    return DomainFlags(is_outside, fields, count, matrix)


def _number(value: Any) -> float:
    """A cell of a mixed row as a float (missing values become NaN, never flagged)."""
    return np.nan if value is None else float(value)
