"""Prepared samples: the reference summary kept in a profile and the current window's form.

The reference side of a numeric column is a :class:`NumericSummary`: the exact empirical CDF
when the column has at most ``max_points`` distinct values, otherwise the exact CDF at
``max_points`` values picked at evenly spaced ranks with linear interpolation between them
(the CDF error is then below ``1 / max_points``). Every numeric method is fitted from it, so
the reference is sorted once and can be thrown away. The current side is sorted once
(:class:`SortedSample`) and shared by every method and the report's histograms.

Categorical columns on both sides are :class:`CategoricalCounts`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> summary = NumericSummary.from_values(rng.normal(size=1000))
>>> summary.n, summary.exact
(1000, True)
>>> float(summary.count_at_most(np.array([np.inf]))[0])
1000.0
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelpilot.errors import InvalidInput, shown

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
DEFAULT_MAX_POINTS = 16_384


def numeric_values(values: Any, *, where: str = "values") -> tuple[FloatArray, int]:
    """Finite float64 values of a 1-D input and how many were missing or non-finite.

    >>> numeric_values([1.0, None, float("nan"), 2])
    (array([1., 2.]), 2)
    """
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if series.dtype == bool or not (
        pd.api.types.is_numeric_dtype(series.dtype) or series.dtype == object
    ):
        raise InvalidInput(
            f"Drift input {where}: expected numbers, got dtype {series.dtype}. "
            "Treat the column as categorical (categorical=[...]) or convert it to numbers.",
            field=where,
        )
    try:
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        sample = series.dropna().head(3).tolist()
        raise InvalidInput(
            f"Drift input {where}: expected numbers, got {shown(sample)}. "
            "Treat the column as categorical (categorical=[...]) or clean the values.",
            field=where,
        ) from exc
    mask = np.isfinite(array)
    kept = int(np.count_nonzero(mask))
    if kept == array.size:
        return array, 0
    return array[mask], int(array.size - kept)


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """The reference CDF of one numeric column, kept instead of the raw values.

    ``values`` are sorted support points; ``below[k]`` and ``upto[k]`` count the reference
    values ``< values[k]`` and ``<= values[k]``. Between two points the CDF is interpolated
    linearly, which is exact when ``exact`` (no reference value lies strictly between them).
    """

    n: int
    n_null: int
    mean: float
    std: float
    values: FloatArray
    below: IntArray
    upto: IntArray
    exact: bool

    @classmethod
    def from_values(
        cls, values: Any, *, max_points: int = DEFAULT_MAX_POINTS, where: str = "reference"
    ) -> NumericSummary:
        """Summarise a 1-D numeric sample (nulls and non-finite values are counted, not used).

        >>> NumericSummary.from_values([3.0, 1.0, 1.0, 2.0]).values
        array([1., 2., 3.])
        """
        array, n_null = numeric_values(values, where=where)
        return cls.from_sorted(np.sort(array), n_null=n_null, max_points=max_points)

    @classmethod
    def from_sorted(
        cls, ordered: FloatArray, *, n_null: int = 0, max_points: int = DEFAULT_MAX_POINTS
    ) -> NumericSummary:
        """Summarise values already sorted ascending and free of NaN.

        >>> NumericSummary.from_sorted(np.arange(10.0), max_points=4).values
        array([0., 3., 6., 9.])
        """
        n = int(ordered.size)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(0, n_null, 0.0, 0.0, np.zeros(0), empty, empty, True)
        distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
        if distinct <= max_points:
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            points = ordered[starts]
            below = starts.astype(np.int64)
            upto = np.r_[starts[1:], n].astype(np.int64)
            exact = True
        else:
            ranks = _distinct(np.linspace(0, n - 1, max_points).round().astype(np.int64))
            points = _distinct(ordered[ranks])
            below = np.searchsorted(ordered, points, side="left").astype(np.int64)
            upto = np.searchsorted(ordered, points, side="right").astype(np.int64)
            exact = False
        mean = float(ordered.mean())
        std = float(ordered.std())
        return cls(n, n_null, mean, std, points, below, upto, exact)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericSummary):
            return NotImplemented
        return (self.n, self.n_null, self.mean, self.std, self.exact) == (
            other.n,
            other.n_null,
            other.mean,
            other.std,
            other.exact,
        ) and all(
            np.array_equal(a, b)
            for a, b in (
                (self.values, other.values),
                (self.below, other.below),
                (self.upto, other.upto),
            )
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def is_constant(self) -> bool:
        """True when every non-null reference value is the same."""
        return self.values.size == 1

    def count_at_most(self, x: FloatArray, *, strict: bool = False) -> FloatArray:
        """Number of reference values ``<= x`` (``< x`` when ``strict``), per element of x.

        >>> s = NumericSummary.from_values([1.0, 2.0, 2.0, 3.0])
        >>> s.count_at_most(np.array([2.0, 2.5])).tolist()
        [3.0, 3.0]
        >>> s.count_at_most(np.array([2.0]), strict=True).tolist()
        [1.0]
        """
        if self.n == 0:
            return np.zeros(x.shape)
        k = np.searchsorted(self.values, x, side="right") - 1
        inside = k >= 0
        kc = np.maximum(k, 0)
        on_point = inside & (self.values[kc] == x)
        at_point = self.below[kc] if strict else self.upto[kc]
        between: FloatArray | IntArray = self.upto[kc] if self.exact else self._interpolate(x, kc)
        counts = np.where(on_point, at_point, between)
        return np.where(inside, counts, 0).astype(np.float64)

    def _interpolate(self, x: FloatArray, kc: IntArray) -> FloatArray:
        last = self.values.size - 1
        k1 = np.minimum(kc + 1, last)
        lo_v, hi_v = self.values[kc], self.values[k1]
        lo_c, hi_c = self.upto[kc], self.below[k1]
        width = hi_v - lo_v
        safe = np.where(width > 0, width, 1.0)
        frac = np.clip((x - lo_v) / safe, 0.0, 1.0)
        return np.where(kc >= last, float(self.n), lo_c + frac * (hi_c - lo_c))

    def value_at_rank(self, rank: IntArray) -> FloatArray:
        """The value of the ``rank``-th smallest reference value (0-based), per element.

        >>> NumericSummary.from_values([5.0, 1.0, 3.0]).value_at_rank(np.array([0, 2])).tolist()
        [1.0, 5.0]
        """
        rank = np.clip(rank, 0, max(self.n - 1, 0))
        k = np.minimum(np.searchsorted(self.upto, rank, side="right"), self.values.size - 1)
        on_point = self.below[k] <= rank
        if self.exact:
            return self.values[k]
        prev = np.maximum(k - 1, 0)
        start = self.upto[prev] - 1
        span = np.maximum(self.below[k] - start, 1)
        frac = (rank - start) / span
        gap = self.values[prev] + frac * (self.values[k] - self.values[prev])
        return np.where(on_point, self.values[k], gap)

    def quantile(self, q: FloatArray) -> FloatArray:
        """Reference quantiles with NumPy's default (linear) rule.

        >>> NumericSummary.from_values(np.arange(11.0)).quantile(np.array([0.5, 0.25])).tolist()
        [5.0, 2.5]
        """
        position = np.asarray(q, dtype=np.float64) * (self.n - 1)
        low = np.floor(position).astype(np.int64)
        frac = position - low
        lower = self.value_at_rank(low)
        upper = self.value_at_rank(np.minimum(low + 1, self.n - 1))
        return np.asarray(lower + frac * (upper - lower), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; arrays are base64 of little-endian bytes (compact and exact)."""
        return {
            "kind": "numeric",
            "n": self.n,
            "n_null": self.n_null,
            "mean": self.mean,
            "std": self.std,
            "exact": self.exact,
            "values": _encode(self.values.astype("<f8")),
            "below": _encode(self.below.astype("<i8")),
            "upto": _encode(self.upto.astype("<i8")),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericSummary:
        """Inverse of :meth:`to_dict`.

        >>> s = NumericSummary.from_values([1.0, 2.0])
        >>> NumericSummary.from_dict(s.to_dict()).count_at_most(np.array([1.5])).tolist()
        [1.0]
        """
        return cls(
            n=int(data["n"]),
            n_null=int(data["n_null"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            values=_decode(data["values"], "<f8").astype(np.float64),
            below=_decode(data["below"], "<i8").astype(np.int64),
            upto=_decode(data["upto"], "<i8").astype(np.int64),
            exact=bool(data["exact"]),
        )


@dataclass(frozen=True)
class SortedSample:
    """A current window's numeric values, sorted once, plus how many were null."""

    values: FloatArray
    n_null: int = 0

    @classmethod
    def from_values(cls, values: Any, *, where: str = "current") -> SortedSample:
        """Drop nulls and non-finite values, sort the rest.

        >>> SortedSample.from_values([3.0, None, 1.0]).values.tolist()
        [1.0, 3.0]
        """
        array, n_null = numeric_values(values, where=where)
        return cls(np.sort(array), n_null)

    @property
    def n(self) -> int:
        """Number of usable values."""
        return int(self.values.size)


@dataclass(frozen=True)
class CategoricalCounts:
    """How often each category occurs in a sample (categories are compared as strings).

    ``untested`` marks a reference column kept without counts and not tested, with why:
    ``"dates"`` or ``"identifier"`` (see ``profile.untested_kind``)."""

    counts: dict[str, int]
    n_null: int = 0
    untested: str = ""

    @classmethod
    def from_values(cls, values: Any) -> CategoricalCounts:
        """Count categories, ignoring nulls.

        >>> CategoricalCounts.from_values(["a", "b", "a", None]).counts
        {'a': 2, 'b': 1}
        """
        series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
        counted = series.value_counts(dropna=True, sort=False)
        counts: dict[str, int] = {}
        for key, count in zip(counted.index, counted.to_numpy(), strict=True):
            if count:
                name = str(key)
                counts[name] = counts.get(name, 0) + int(count)
        n_null = int(series.size) - sum(counts.values())
        return cls(counts, n_null)

    @property
    def n(self) -> int:
        """Number of non-null values."""
        return sum(self.counts.values())

    def aligned(self, other: CategoricalCounts) -> tuple[list[str], IntArray, IntArray]:
        """Both count vectors over the union of categories (this sample's order first).

        >>> a, b = CategoricalCounts({"x": 2}), CategoricalCounts({"y": 1})
        >>> a.aligned(b)
        (['x', 'y'], array([2, 0]), array([0, 1]))
        """
        names = list(self.counts) + [k for k in other.counts if k not in self.counts]
        mine = np.array([self.counts.get(k, 0) for k in names], dtype=np.int64)
        theirs = np.array([other.counts.get(k, 0) for k in names], dtype=np.int64)
        return names, mine, theirs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = {"kind": "categorical", "counts": dict(self.counts), "n_null": self.n_null}
        return {**data, "untested": self.untested} if self.untested else data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalCounts:
        """Inverse of :meth:`to_dict`.

        >>> CategoricalCounts.from_dict({"counts": {"a": 1}, "n_null": 0}).n
        1
        """
        counts = {str(k): int(v) for k, v in data["counts"].items()}
        return cls(counts, int(data["n_null"]), str(data.get("untested", "")))


def as_counts(values: Any) -> CategoricalCounts:
    """``values`` as :class:`CategoricalCounts` (already counted inputs pass through).

    >>> as_counts(["a", "a"]).counts
    {'a': 2}
    """
    return (
        values if isinstance(values, CategoricalCounts) else CategoricalCounts.from_values(values)
    )


def _distinct(ordered: NDArray[Any]) -> NDArray[Any]:
    """Distinct values of an already sorted array (np.unique would hash and sort again)."""
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def _encode(array: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _decode(text: str, dtype: str) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()
