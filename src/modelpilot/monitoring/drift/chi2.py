"""Chi-square test of homogeneity for categorical columns (reference vs current counts).

The 2 x k contingency table spans every category seen on either side; categories absent from
both are dropped, and with one degree of freedom Yates' continuity correction is applied, as
``scipy.stats.chi2_contingency`` does by default. Its effect size is the total variation
distance (half the sum of absolute share differences: the share of rows that would have to
change category), and a column is only called drifted when that reaches ``min_effect_size``.

>>> ref = ["a"] * 500 + ["b"] * 500
>>> test = ChiSquare().fit(ref)
>>> test.score(["a"] * 480 + ["b"] * 520).drifted
False
>>> test.score(["a"] * 350 + ["b"] * 650).drifted
True
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy import special

from modelpilot.monitoring.drift.base import DriftResult, fitted
from modelpilot.monitoring.drift.ks import DEFAULT_MIN_EFFECT_SIZE
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import CategoricalCounts, IntArray


@register(
    "chi2",
    default_threshold=0.05,
    kinds=("categorical",),
    uses_p_value=True,
    summary="chi-square test of homogeneity with a minimum effect size",
)
class ChiSquare:
    """Chi-square test; ``threshold`` is the significance level."""

    def __init__(
        self, *, threshold: float = 0.05, min_effect_size: float = DEFAULT_MIN_EFFECT_SIZE
    ) -> None:
        self.threshold = threshold
        self.min_effect_size = min_effect_size
        self.reference: CategoricalCounts | None = None

    def fit(self, reference: Any) -> Self:
        """Keep the reference counts."""
        self.reference = as_counts(reference)
        return self

    def score(self, current: Any) -> DriftResult:
        """Chi-square statistic and p-value of ``current`` against the reference."""
        reference = fitted(self.reference, "chi2")
        _, ref, cur = reference.aligned(as_counts(current))
        statistic, p_value = chi_square(ref, cur)
        effect = total_variation(ref, cur)
        return DriftResult(
            statistic=statistic,
            p_value=p_value,
            threshold=self.threshold,
            drifted=p_value < self.threshold and effect >= self.min_effect_size,
            effect_size=effect,
            min_effect_size=self.min_effect_size,
        )


def chi_square(ref: IntArray, cur: IntArray) -> tuple[float, float]:
    """Statistic and p-value of the 2 x k homogeneity test on two count vectors.

    >>> chi_square(np.array([50, 50]), np.array([50, 50]))
    (0.0, 1.0)
    """
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]]).astype(np.float64)
    dof = table.shape[1] - 1
    if dof < 1 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    diff = np.abs(table - expected)
    if dof == 1:
        diff = np.maximum(diff - 0.5, 0.0)
    statistic = float(np.sum(diff * diff / expected))
    return statistic, float(np.clip(special.chdtrc(dof, statistic), 0.0, 1.0))  # chi2.sf


def total_variation(ref: IntArray, cur: IntArray) -> float:
    """Half the L1 distance between the two share vectors (0: identical, 1: disjoint).

    >>> total_variation(np.array([1, 1]), np.array([2, 0]))
    0.5
    """
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(ref / ref.sum() - cur / cur.sum()).sum())


def as_counts(values: Any) -> CategoricalCounts:
    """``values`` as :class:`CategoricalCounts` (already counted inputs pass through)."""
    return (
        values if isinstance(values, CategoricalCounts) else CategoricalCounts.from_values(values)
    )
