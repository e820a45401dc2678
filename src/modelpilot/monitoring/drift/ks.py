"""Two-sample Kolmogorov-Smirnov test for numeric columns, against a kept reference CDF.

The statistic is the largest gap between the reference and current empirical CDFs. It is
computed from the reference summary and the sorted current window in O(m log k), so the
reference is never re-sorted. P-values follow ``scipy.stats.ks_2samp(method="auto")``: exact
when both samples have at most 10,000 values (the reference is then held exactly), the
finite-n Kolmogorov distribution ``kstwo`` up to an effective size ``n*m/(n+m)`` of 10,000,
and its limit ``kstwobign`` beyond that or for p-values below 1e-12 (within a few percent of
``kstwo`` there, and O(1) instead of O(n) to evaluate).

Large samples make every difference significant, so a column is only called drifted when
its effect size, the Wasserstein-1 distance in reference standard deviations (see
:mod:`.effect`), also reaches ``min_effect_size`` (calibrated: :mod:`.minimum`). A constant
reference has no spread to measure against; the test then decides alone.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ks = KolmogorovSmirnov().fit(rng.normal(size=2000))
>>> ks.score(rng.normal(size=2000)).drifted
False
>>> ks.score(rng.normal(0.5, 1, size=2000)).drifted
True
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from scipy import special

from modelpilot.monitoring.drift.base import DriftResult, fitted
from modelpilot.monitoring.drift.effect import normalised_wasserstein
from modelpilot.monitoring.drift.minimum import MinEffect, minimum_for
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import FloatArray, NumericSummary, SortedSample

EXACT_MAX_N = 10_000  # scipy's MAX_AUTO_N: exact p-values up to this many values per side
KSTWO_MAX_EN = 10_000  # beyond this effective size kstwo.sf costs up to O(n); kstwobign is O(1)
FAR_TAIL_P = 1e-12  # below this no decision changes, so the O(1) limit is used there too


@register(
    "ks",
    default_threshold=0.05,
    kinds=("numeric",),
    uses_p_value=True,
    summary="two-sample Kolmogorov-Smirnov test; effect: Wasserstein-1 / reference sd",
)
class KolmogorovSmirnov:
    """KS test; ``threshold`` is the significance level."""

    def __init__(self, *, threshold: float = 0.05, min_effect_size: MinEffect = None) -> None:
        self.threshold = threshold
        self.min_effect_size = min_effect_size
        self.reference: NumericSummary | None = None

    def fit(self, reference: Any) -> Self:
        """Keep the reference CDF (a :class:`NumericSummary` or raw values)."""
        self.reference = _as_summary(reference)
        return self

    def score(self, current: Any) -> DriftResult:
        """KS statistic and p-value of ``current`` against the reference."""
        reference = fitted(self.reference, "ks")
        sample = current if isinstance(current, SortedSample) else SortedSample.from_values(current)
        d, p = ks_test(reference, sample.values)
        effect = normalised_wasserstein(reference, NumericSummary.from_sorted(sample.values))
        result = DriftResult(
            statistic=d,
            p_value=p,
            threshold=self.threshold,
            drifted=False,
            effect_size=effect,
            min_effect_size=minimum_for(self.min_effect_size, "ks"),
            effect="wasserstein",
            effects={} if effect is None else {"wasserstein": effect},
            check="ks",
        )
        return result.with_p_value(p)


def ks_statistic(reference: NumericSummary, ordered: FloatArray) -> float:
    """sup |F_ref - F_cur| from the reference summary and the sorted current values.

    Both CDFs are compared at every kept reference point (its value and just below it), which
    costs O(k log m) for k kept points. Between two adjacent kept points no current value can
    move the gap further than the reference mass between them, so the result is exact for an
    exact summary and at most ``1 / max_points`` too small (conservative) for a sketched one.

    >>> ref = NumericSummary.from_values([1.0, 2.0, 3.0])
    >>> round(ks_statistic(ref, np.array([2.0, 3.0, 4.0])), 6)
    0.333333
    """
    n, m = reference.n, ordered.size
    if n == 0 or m == 0:
        return 0.0
    cur_upto = np.searchsorted(ordered, reference.values, side="right") / m
    cur_below = np.searchsorted(ordered, reference.values, side="left") / m
    d_upto = np.abs(reference.upto / n - cur_upto)
    d_below = np.abs(reference.below / n - cur_below)
    return min(float(max(d_upto.max(), d_below.max())), 1.0)


def ks_test(reference: NumericSummary, ordered: FloatArray) -> tuple[float, float]:
    """KS statistic and two-sided p-value (see the module docstring for the regimes).

    >>> ref = NumericSummary.from_values(np.arange(100.0))
    >>> d, p = ks_test(ref, np.arange(100.0) + 30)
    >>> round(d, 2), p < 1e-3
    (0.3, True)
    """
    n, m = reference.n, ordered.size
    d = ks_statistic(reference, ordered)
    if n == 0 or m == 0:
        return d, 1.0
    if reference.exact and max(n, m) <= EXACT_MAX_N:
        exact = _exact_test(reference, ordered)
        if exact is not None:
            return exact
    en = n * m / (n + m)
    p = float(special.kolmogorov(d * math.sqrt(en)))  # scipy.stats.kstwobign.sf
    if en <= KSTWO_MAX_EN and p > FAR_TAIL_P:
        from scipy import stats  # small samples only: scipy.stats costs ~45 MB to import

        p = float(stats.kstwo.sf(d, np.round(en)))
    return d, min(max(p, 0.0), 1.0)


def _exact_test(reference: NumericSummary, ordered: FloatArray) -> tuple[float, float] | None:
    # Small samples: scipy's exact lattice-path count on the reconstructed reference (it also
    # rounds the statistic to a multiple of 1/lcm(n, m)). If it gives up it warns, and
    # warnings may be errors: fall back to the kstwo distribution then.
    from scipy import stats

    values = np.repeat(reference.values, reference.upto - reference.below)
    try:
        result = stats.ks_2samp(values, ordered, method="exact")
    except RuntimeWarning:
        return None
    return float(result.statistic), min(max(float(result.pvalue), 0.0), 1.0)


def _as_summary(reference: Any) -> NumericSummary:
    if isinstance(reference, NumericSummary):
        return reference
    return NumericSummary.from_values(reference)
