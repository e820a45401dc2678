"""Chi-square test of homogeneity for categorical columns (reference vs current counts).

The 2 x k contingency table spans every category seen on either side; categories absent from
both are dropped, and with one degree of freedom Yates' continuity correction is applied, as
``scipy.stats.chi2_contingency`` does by default. High-cardinality columns are compared on
the reference's 50 largest categories plus "(other)" (new categories land there).

Effect size (:mod:`.effect`): the Jensen-Shannon distance of the shares (PSI reported with
it), or, for two categories, the difference in shares; a column is only called drifted when
that also reaches its calibrated minimum (:mod:`.minimum`).

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
from modelpilot.monitoring.drift.effect import TOP_CATEGORIES, frequency_effects, top_categories
from modelpilot.monitoring.drift.minimum import MinEffect, minimum_for
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import CategoricalCounts, IntArray, as_counts


@register(
    "chi2",
    default_threshold=0.05,
    kinds=("categorical",),
    uses_p_value=True,
    summary="chi-square test of homogeneity; effect: Jensen-Shannon / difference in shares",
)
class ChiSquare:
    """Chi-square test; ``threshold`` is the significance level."""

    def __init__(self, *, threshold: float = 0.05, min_effect_size: MinEffect = None) -> None:
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
        names, ref, cur = reference.aligned(as_counts(current))
        check = "chi2_many" if len(names) > TOP_CATEGORIES + 1 else ""
        _, ref, cur = top_categories(names, ref, cur)
        return frequency_result(ref, cur, self.threshold, self.min_effect_size, check=check)


def frequency_result(
    ref: IntArray, cur: IntArray, threshold: float, min_effect_size: MinEffect, *, check: str = ""
) -> DriftResult:
    """Chi-square test plus effect sizes of two count vectors over the same bins.

    ``check`` picks the minimum (:mod:`.minimum`); by default ``chi2`` or, for two
    categories, ``chi2_binary`` (decided on the difference in shares); ``chi2_many`` for a
    column of more than 51 categories compared on its 50 largest plus "(other)".

    >>> frequency_result(np.array([500, 500]), np.array([350, 650]), 0.05, None).effect
    'share_difference'
    """
    statistic, p_value = chi_square(ref, cur)
    effects = frequency_effects(ref, cur)
    binary = int(np.count_nonzero((ref + cur) > 0)) <= 2
    check = check or ("chi2_binary" if binary else "chi2")
    effect = "share_difference" if check == "chi2_binary" else "jensenshannon"
    result = DriftResult(
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=False,
        effect_size=effects[effect],
        min_effect_size=minimum_for(min_effect_size, check),
        effect=effect,
        effects=effects,
        check=check,
    )
    return result.with_p_value(p_value)


def pool_sparse(table: np.ndarray[Any, Any], min_expected: float = 5.0) -> np.ndarray[Any, Any]:
    """A 2 x k table whose bins expected below ``min_expected`` in the smaller row are pooled
    into one (merged into the smallest other bin while still below it): the chi-square's
    p-value is only valid with expected counts of about 5 or more, and on a small window many
    exact values or rare categories have far fewer, which made it cry wolf.

    >>> pool_sparse(np.array([[100.0, 100.0, 1.0, 1.0], [50.0, 50.0, 0.0, 2.0]])).tolist()
    [[102.0, 100.0], [52.0, 50.0]]
    """
    rows = table.sum(axis=1)
    if table.shape[1] <= 2 or rows.min() == 0:
        return table
    expected = table.sum(axis=0) * rows.min() / rows.sum()
    sparse = expected < min_expected
    if not sparse.any():
        return table
    kept = table[:, ~sparse]
    pooled = table[:, sparse].sum(axis=1, keepdims=True)
    if kept.shape[1] and pooled.sum() * rows.min() / rows.sum() < min_expected:
        smallest = int(np.argmin(kept.sum(axis=0)))
        kept = kept.copy()
        kept[:, smallest] += pooled[:, 0]
        return kept
    return np.hstack([kept, pooled])


def chi_square(ref: IntArray, cur: IntArray) -> tuple[float, float]:
    """Statistic and p-value of the 2 x k homogeneity test on two count vectors.

    >>> chi_square(np.array([50, 50]), np.array([50, 50]))
    (0.0, 1.0)
    """
    keep = (ref + cur) > 0
    table = pool_sparse(np.vstack([ref[keep], cur[keep]]).astype(np.float64))
    dof = table.shape[1] - 1
    if dof < 1 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    diff = np.abs(table - expected)
    if dof == 1:
        diff = np.maximum(diff - 0.5, 0.0)
    statistic = float(np.sum(diff * diff / expected))
    return statistic, float(np.clip(special.chdtrc(dof, statistic), 0.0, 1.0))  # chi2.sf
