"""Jensen-Shannon distance for numeric and categorical columns.

The distance is the square root of the Jensen-Shannon divergence (base 2) between the binned
reference and current shares: symmetric, 0 for identical shares, 1 for disjoint supports,
and finite without smoothing. It equals ``scipy.spatial.distance.jensenshannon(p, q,
base=2)``. Numeric columns use the reference deciles as bins (as PSI does); categorical
columns use the union of categories. The default threshold 0.1 follows Evidently's.

Reference: J. Lin, "Divergence measures based on the Shannon entropy", IEEE Transactions on
Information Theory 37(1), 1991; D. M. Endres and J. E. Schindelin, "A new metric for
probability distributions", IEEE Transactions on Information Theory 49(7), 2003 (the square
root is a metric).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> js = JensenShannon().fit(rng.normal(size=5000))
>>> js.score(rng.normal(size=5000)).drifted, js.score(rng.normal(1, 1, 5000)).drifted
(False, True)
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from modelpilot.monitoring.drift.base import DriftResult, distance_result, not_fitted
from modelpilot.monitoring.drift.binning import quantile_edges, reference_shares
from modelpilot.monitoring.drift.psi import DEFAULT_BINS, binned_shares, reference_of
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import CategoricalCounts, FloatArray, NumericSummary


@register(
    "jensenshannon",
    default_threshold=0.1,
    kinds=("numeric", "categorical"),
    uses_p_value=False,
    summary="Jensen-Shannon distance (base 2) over reference deciles or categories",
)
class JensenShannon:
    """Jensen-Shannon distance; ``threshold`` is the distance above which a column drifted."""

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
        """Jensen-Shannon distance of ``current`` to the reference."""
        if self.reference is None:
            raise not_fitted("jensenshannon")
        p, q = binned_shares(self.reference, current, self.edges, self.shares)
        value = jensen_shannon(p, q)
        return distance_result(value, self.threshold, "jensenshannon")


def jensen_shannon(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance (base 2) of two share vectors over the same bins.

    >>> jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    m = (p + q) / 2
    divergence = 0.5 * (_kl_to(p, m) + _kl_to(q, m))
    return float(np.sqrt(min(max(divergence, 0.0), 1.0)))


def _kl_to(p: FloatArray, m: FloatArray) -> float:
    # m >= p / 2, so m is 0 only where p / 2 underflowed (p ~ 5e-324): a term of ~p, nil
    used = (p > 0) & (m > 0)
    return float(np.sum(p[used] * np.log2(p[used] / m[used])))
