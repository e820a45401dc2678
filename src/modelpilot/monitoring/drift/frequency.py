"""Exact-value frequencies for integer-valued numeric columns with few distinct values.

Ages, counts and codes are numbers, but what changes in them is often the frequency of a few
exact values (a new top code, a dip at some ages) while the mean and the KS statistic barely
move. Such columns (integer-valued, at most ``MAX_EXACT_VALUES`` distinct values in the
reference) are therefore also compared as a frequency table over their exact values: a
chi-square test of homogeneity, with the Jensen-Shannon distance as the effect size (PSI
reported with it) and its own calibrated minimum (``exact_values`` in :mod:`.minimum`).
Current values the reference never had are pooled in one extra "other" bin.

>>> import numpy as np
>>> from modelpilot.monitoring.drift.sample import NumericSummary, SortedSample
>>> rng = np.random.default_rng(0)
>>> ref = NumericSummary.from_values(rng.integers(0, 10, 20_000))
>>> check = ExactValueFrequencies().fit(ref)
>>> check.score(SortedSample.from_values(rng.integers(0, 10, 20_000))).drifted
False
>>> moved = rng.integers(0, 10, 20_000)
>>> moved[(moved == 3) & (rng.random(20_000) < 0.7)] = 4  # most 3s become 4s
>>> check.score(SortedSample.from_values(moved)).drifted
True
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from modelpilot.monitoring.drift.base import DriftResult, fitted
from modelpilot.monitoring.drift.chi2 import frequency_result
from modelpilot.monitoring.drift.minimum import MinEffect
from modelpilot.monitoring.drift.sample import IntArray, NumericSummary, SortedSample

MAX_EXACT_VALUES = 50


def has_few_integer_values(summary: NumericSummary, limit: int = MAX_EXACT_VALUES) -> bool:
    """True for an exact summary of at most ``limit`` distinct values, all integers.

    >>> has_few_integer_values(NumericSummary.from_values([1.0, 2.0, 2.0]))
    True
    >>> has_few_integer_values(NumericSummary.from_values([0.5, 2.0]))
    False
    """
    values = summary.values
    return bool(summary.exact and 0 < values.size <= limit and np.all(values == np.floor(values)))


class ExactValueFrequencies:
    """Chi-square over exact values; ``threshold`` is the significance level."""

    def __init__(self, *, threshold: float = 0.05, min_effect_size: MinEffect = None) -> None:
        self.threshold = threshold
        self.min_effect_size = min_effect_size
        self.reference: NumericSummary | None = None

    def fit(self, reference: NumericSummary) -> Self:
        """Keep the reference's exact value counts."""
        self.reference = reference
        return self

    def score(self, current: Any) -> DriftResult:
        """Chi-square and effect sizes of the current window's exact-value frequencies."""
        reference = fitted(self.reference, "exact_values")
        sample = current if isinstance(current, SortedSample) else SortedSample.from_values(current)
        ref, cur = value_counts(reference, sample.values)
        return frequency_result(
            ref, cur, self.threshold, self.min_effect_size, check="exact_values"
        )


def value_counts(
    reference: NumericSummary, ordered: np.ndarray[Any, Any]
) -> tuple[IntArray, IntArray]:
    """Counts per reference value, plus one last bin for values the reference never had.

    >>> ref = NumericSummary.from_values([1.0, 2.0, 2.0])
    >>> value_counts(ref, np.array([2.0, 3.0]))
    (array([1, 2, 0]), array([0, 1, 1]))
    """
    ref = np.r_[reference.upto - reference.below, 0].astype(np.int64)
    at = np.searchsorted(ordered, reference.values, side="right") - np.searchsorted(
        ordered, reference.values, side="left"
    )
    cur = np.r_[at, ordered.size - at.sum()].astype(np.int64)
    return ref, cur
