"""Population stability index (PSI) for numeric and categorical columns.

PSI = sum_i (q_i - p_i) * ln(q_i / p_i) over bins, with p the reference and q the current
shares. It is the symmetrised Kullback-Leibler divergence (J-divergence) of the binned
distributions, so it is >= 0, zero only for equal shares, and symmetric in p and q.

Source: N. Siddiqi, *Credit Risk Scorecards: Developing and Implementing Intelligent Credit
Scoring*, Wiley, 2006, ch. 8 (the index and the rule of thumb: < 0.1 stable, 0.1-0.25
some shift, > 0.25 significant shift); B. Yurdakul, *Statistical Properties of Population
Stability Index*, PhD dissertation, Western Michigan University, 2018
(https://scholarworks.wmich.edu/dissertations/3208) for its sampling distribution and the
J-divergence link. Numeric bins are the reference deciles (Siddiqi's practice); empty bins
are floored at ``eps`` = 1e-4 so the logarithm stays finite, as is common in practice.

PSI has no p-value: its default threshold 0.1 is a distance. A 0.2-standard-deviation
mean shift of a normal gives a PSI near 0.04, so PSI at 0.1 only catches larger shifts.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> psi = PopulationStabilityIndex().fit(rng.normal(size=5000))
>>> round(psi.score(rng.normal(size=5000)).statistic, 3)
0.005
>>> psi.score(rng.normal(1.0, 1, size=5000)).drifted
True
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from modelpilot.monitoring.drift.base import DriftResult, distance_result, not_fitted
from modelpilot.monitoring.drift.binning import current_shares, quantile_edges, reference_shares
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import (
    CategoricalCounts,
    FloatArray,
    NumericSummary,
    SortedSample,
    as_counts,
)

EPS = 1e-4
DEFAULT_BINS = 10


@register(
    "psi",
    default_threshold=0.1,
    kinds=("numeric", "categorical"),
    uses_p_value=False,
    summary="population stability index over reference deciles or categories",
)
class PopulationStabilityIndex:
    """PSI; ``threshold`` is the index above which a column has drifted."""

    def __init__(self, *, threshold: float = 0.1, bins: int = DEFAULT_BINS) -> None:
        self.threshold = threshold
        self.bins = bins
        self.reference: NumericSummary | CategoricalCounts | None = None
        self.edges: FloatArray | None = None
        self.shares: FloatArray | None = None

    def fit(self, reference: Any) -> Self:
        """Numeric: reference decile edges and shares. Categorical: reference counts."""
        self.reference = reference_of(reference)
        if isinstance(self.reference, NumericSummary):
            self.edges = quantile_edges(self.reference, self.bins)
            self.shares = reference_shares(self.reference, self.edges)
        return self

    def score(self, current: Any) -> DriftResult:
        """PSI of ``current`` against the reference."""
        if self.reference is None:
            raise not_fitted("psi")
        p, q = binned_shares(self.reference, current, self.edges, self.shares)
        value = psi(p, q)
        return distance_result(value, self.threshold, "psi")


def psi(p: FloatArray, q: FloatArray, eps: float = EPS) -> float:
    """PSI of two share vectors over the same bins (symmetric, >= 0).

    >>> psi(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    0.0
    """
    p = np.maximum(p, eps)
    q = np.maximum(q, eps)
    return float(max(np.sum((q - p) * np.log(q / p)), 0.0))


def reference_of(reference: Any) -> NumericSummary | CategoricalCounts:
    """A summary as is; raw values as numeric when they are numbers, else categorical."""
    if isinstance(reference, NumericSummary | CategoricalCounts):
        return reference
    array = np.asarray(reference)
    if array.dtype.kind in "fiu":
        return NumericSummary.from_values(array)
    return CategoricalCounts.from_values(reference)


def binned_shares(
    reference: NumericSummary | CategoricalCounts,
    current: Any,
    edges: FloatArray | None,
    shares: FloatArray | None,
) -> tuple[FloatArray, FloatArray]:
    """Reference and current shares over the same bins (numeric) or categories."""
    if isinstance(reference, CategoricalCounts):
        _, ref, cur = reference.aligned(as_counts(current))
        return ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)
    assert edges is not None and shares is not None  # set together with a numeric reference
    sample = current if isinstance(current, SortedSample) else SortedSample.from_values(current)
    return shares, current_shares(sample, edges)
