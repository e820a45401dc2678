"""Seeded, vectorised bootstrap: resample weights, replicates, percentile intervals.

A resample of ``n`` rows drawn with replacement is represented by how many times it drew each
row, a row of a ``(B, n)`` count matrix. Metrics in :mod:`~modelpilot.evaluation.metrics`
take that matrix directly, so ``B`` replicates cost a few matrix products. Matrices are made
in chunks of at most ~4 million cells, so memory stays flat for large evaluations.

Several statistics computed from the *same* draws are paired: the difference between a
model's and a baseline's replicates is the paired bootstrap of the difference, which is far
tighter than two independent intervals when both models err on the same rows.

Intervals are percentile intervals (Efron & Tibshirani, *An Introduction to the Bootstrap*,
1993, ch. 13): the ``(1 − c)/2`` and ``(1 + c)/2`` quantiles of the replicates. Replicates
where a statistic is undefined (NaN) are left out and counted.

>>> import numpy as np
>>> y = np.random.default_rng(0).normal(size=500)
>>> draws = run_bootstrap(500, {"mean": lambda w: (w @ y) / w.sum(axis=1)},
...                       n_bootstrap=2000, seed=[0])
>>> value = to_metric_value("mean", draws, confidence=0.95)
>>> value.lower < float(np.mean(y)) < value.upper
True
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
_MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class MetricValue:
    """A point value with its bootstrap interval (``None`` where undefined or not computed).

    ``n_undefined`` counts the resamples where the statistic was undefined and left out.
    """

    value: float | None
    lower: float | None = None
    upper: float | None = None
    n_undefined: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "n_undefined": self.n_undefined,
        }


@dataclass(frozen=True)
class Draws:
    """Point values and bootstrap replicates of several statistics from the same resamples."""

    points: dict[Hashable, float]
    replicates: dict[Hashable, np.ndarray]
    n_bootstrap: int


def seed_for(seed: int, *key: object) -> list[int]:
    """A stable seed sequence for one part of an evaluation (a slice, a scenario).

    >>> seed_for(0, "plan", "pro") == seed_for(0, "plan", "pro")
    True
    """
    return [seed, *(zlib.crc32(repr(k).encode()) for k in key)]


def resample_counts(n: int, n_bootstrap: int, seed: Sequence[int]) -> Iterator[np.ndarray]:
    """Chunks of the ``(n_bootstrap, n)`` matrix of draw counts (float64), seeded.

    >>> counts = np.vstack(list(resample_counts(5, 3, [0])))
    >>> counts.shape, counts.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = np.random.default_rng(list(seed))
    chunk = max(1, _MAX_CELLS // max(n, 1))
    done = 0
    while done < n_bootstrap:
        b = min(chunk, n_bootstrap - done)
        rows = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(rows.ravel(), minlength=b * n).reshape(b, n).astype(float)
        done += b


def run_bootstrap(
    n: int,
    statistics: Mapping[K, Callable[[np.ndarray], np.ndarray]],
    *,
    n_bootstrap: int,
    seed: Sequence[int],
) -> Draws:
    """Point values and ``n_bootstrap`` paired replicates of every statistic.

    Each statistic maps a ``(B, n)`` weight matrix to ``B`` values.
    """
    ones = np.ones((1, n))
    points: dict[Hashable, float] = {k: float(fn(ones)[0]) for k, fn in statistics.items()}
    parts: dict[Hashable, list[np.ndarray]] = {k: [] for k in statistics}
    if n_bootstrap > 0 and n > 0:
        for w in resample_counts(n, n_bootstrap, seed):
            for k, fn in statistics.items():
                parts[k].append(np.asarray(fn(w), dtype=float))
    replicates = {k: np.concatenate(v) if v else np.empty(0, dtype=float) for k, v in parts.items()}
    return Draws(points, replicates, n_bootstrap)


def percentile_interval(
    replicates: np.ndarray, confidence: float
) -> tuple[float | None, float | None, int]:
    """Two-sided percentile interval of the defined replicates, and how many were undefined.

    >>> lower, upper, undefined = percentile_interval(np.r_[np.arange(11.0), np.nan], 0.8)
    >>> round(lower, 6), round(upper, 6), undefined
    (1.0, 9.0, 1)
    """
    defined = replicates[~np.isnan(replicates)]
    missing = int(replicates.size - defined.size)
    if defined.size == 0:
        return None, None, missing
    alpha = (1.0 - confidence) / 2
    lower, upper = np.quantile(defined, [alpha, 1.0 - alpha])
    return float(lower), float(upper), missing


def lower_bound(replicates: np.ndarray, confidence: float) -> float | None:
    """One-sided lower confidence bound: the ``1 − confidence`` quantile of the replicates.

    >>> round(lower_bound(np.arange(101.0), 0.95), 6)
    5.0
    """
    defined = replicates[~np.isnan(replicates)]
    if defined.size == 0:
        return None
    return float(np.quantile(defined, 1.0 - confidence))


def finite(value: float) -> float | None:
    """``None`` for NaN/inf, the float otherwise (results stay strict JSON)."""
    return float(value) if np.isfinite(value) else None


def to_metric_value(key: Hashable, draws: Draws, confidence: float) -> MetricValue:
    """The point value of ``key`` with its percentile interval (none without resamples)."""
    value = finite(draws.points[key])
    if value is None or draws.n_bootstrap == 0:
        return MetricValue(value)
    lower, upper, missing = percentile_interval(draws.replicates[key], confidence)
    return MetricValue(value, lower, upper, missing)
