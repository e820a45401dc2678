"""Shared binning for the histogram-based methods (PSI, Jensen-Shannon) and the report plots.

Numeric bins are equal-mass bins of the reference: their inner edges are reference values
at evenly spaced ranks, the outer bins are open-ended, and a value equal to an edge falls in
the bin to its left. Bins therefore come from the reference alone (a profile can hold them)
and current values outside the reference range still land in the end bins.

>>> import numpy as np
>>> from modelpilot.monitoring.drift.sample import NumericSummary, SortedSample
>>> ref = NumericSummary.from_values(np.arange(100.0))
>>> edges = quantile_edges(ref, 4)
>>> edges.tolist()
[25.0, 50.0, 74.0]
>>> reference_shares(ref, edges).tolist()
[0.26, 0.25, 0.24, 0.25]
>>> current_shares(SortedSample.from_values(np.arange(100.0) + 50), edges).tolist()
[0.0, 0.01, 0.24, 0.75]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot.monitoring.drift.base import ColumnKind
from modelpilot.monitoring.drift.sample import (
    CategoricalCounts,
    FloatArray,
    NumericSummary,
    SortedSample,
)

PLOT_BINS = 20
PLOT_TOP_CATEGORIES = 12


def quantile_edges(reference: NumericSummary, bins: int) -> FloatArray:
    """Inner edges of ``bins`` equal-mass reference bins (fewer when values repeat)."""
    if reference.n == 0:
        return np.zeros(0)
    probabilities = np.arange(1, bins) / bins
    ranks = np.round(probabilities * (reference.n - 1)).astype(np.int64)
    edges = np.unique(reference.value_at_rank(ranks))
    return np.asarray(edges[edges < reference.values[-1]], dtype=np.float64)


def reference_shares(reference: NumericSummary, edges: FloatArray) -> FloatArray:
    """Share of the reference in each bin (``len(edges) + 1`` bins)."""
    cumulative = np.r_[0.0, reference.count_at_most(edges), float(reference.n)]
    return np.asarray(np.diff(cumulative) / max(reference.n, 1), dtype=np.float64)


def current_shares(current: SortedSample, edges: FloatArray) -> FloatArray:
    """Share of the (sorted) current window in each bin."""
    cumulative = np.r_[0, np.searchsorted(current.values, edges, side="right"), current.n]
    return np.asarray(np.diff(cumulative) / max(current.n, 1), dtype=np.float64)


@dataclass(frozen=True)
class Histogram:
    """Reference and current shares over the same bins, for plots and dashboards."""

    kind: ColumnKind
    labels: list[str]
    reference: list[float]
    current: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "labels": self.labels,
            "reference": self.reference,
            "current": self.current,
        }


def numeric_histogram(
    reference: NumericSummary, current: SortedSample, bins: int = PLOT_BINS
) -> Histogram:
    """Equal-width bins over the reference's central 99 %, with open-ended outer bins.

    >>> ref = NumericSummary.from_values(np.arange(1000.0))
    >>> h = numeric_histogram(ref, SortedSample.from_values(np.arange(1000.0)), bins=4)
    >>> h.labels[0], h.reference == h.current
    ('≤ 252.2', True)
    """
    low, high = reference.quantile(np.array([0.005, 0.995]))
    edges = np.unique(np.linspace(low, high, bins + 1)[1:-1])
    labels = [f"≤ {edges[0]:.4g}"] if edges.size else ["all"]
    labels += [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(edges)]
    labels += [f"> {edges[-1]:.4g}"] if edges.size else []
    return Histogram(
        "numeric",
        labels,
        [float(x) for x in reference_shares(reference, edges)],
        [float(x) for x in current_shares(current, edges)],
    )


def categorical_histogram(
    reference: CategoricalCounts, current: CategoricalCounts, top: int = PLOT_TOP_CATEGORIES
) -> Histogram:
    """Shares of the most frequent categories (either side), the rest as ``(other)``.

    >>> h = categorical_histogram(CategoricalCounts({"a": 3, "b": 1}), CategoricalCounts({"c": 4}))
    >>> h.labels, h.reference, h.current
    (['c', 'a', 'b'], [0.0, 0.75, 0.25], [1.0, 0.0, 0.0])
    """
    names, ref, cur = reference.aligned(current)
    ref_share = ref / max(int(ref.sum()), 1)
    cur_share = cur / max(int(cur.sum()), 1)
    order = np.argsort(-(np.maximum(ref_share, cur_share)), kind="stable")
    kept, rest = order[:top], order[top:]
    labels = [names[i] for i in kept]
    ref_out = [float(ref_share[i]) for i in kept]
    cur_out = [float(cur_share[i]) for i in kept]
    if rest.size:
        labels.append("(other)")
        ref_out.append(float(ref_share[rest].sum()))
        cur_out.append(float(cur_share[rest].sum()))
    return Histogram("categorical", labels, ref_out, cur_out)
