"""Normalised Wasserstein (earth mover's) distance for numeric columns.

W1 is the area between the reference and current CDFs: how far, in the column's units, mass
has to move to turn one distribution into the other. Dividing by the reference standard
deviation makes it unit-free: a pure mean shift of ``k`` standard deviations scores ``k``
whatever the shape of the distribution. The default threshold 0.1 (a tenth of a standard
deviation) follows Evidently's. With an exact reference summary the distance equals
``scipy.stats.wasserstein_distance(reference, current) / reference.std()``; with a sketched
one (or a window with more than 16,384 distinct values, summarised the same way) the CDFs are
interpolated between kept points (:func:`.effect.wasserstein_between`).

Reference: L. N. Vaserstein, "Markov processes over denumerable products of spaces describing
large systems of automata", Problems of Information Transmission 5(3), 1969; S. S.
Vallender, "Calculation of the Wasserstein distance between probability distributions on the
line", Theory of Probability and Its Applications 18(4), 1974 (W1 = area between CDFs).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> w = NormalisedWasserstein().fit(rng.normal(size=5000))
>>> round(w.score(rng.normal(0.5, 1, size=5000)).statistic, 1)
0.5
"""

from __future__ import annotations

from typing import Any, Self

from modelpilot.errors import InvalidInput
from modelpilot.monitoring.drift.base import DriftResult, distance_result, fitted
from modelpilot.monitoring.drift.effect import normalised_wasserstein
from modelpilot.monitoring.drift.ks import _as_summary
from modelpilot.monitoring.drift.registry import register
from modelpilot.monitoring.drift.sample import NumericSummary, SortedSample


@register(
    "wasserstein",
    default_threshold=0.1,
    kinds=("numeric",),
    uses_p_value=False,
    summary="Wasserstein-1 distance divided by the reference standard deviation",
)
class NormalisedWasserstein:
    """Normalised W1; ``threshold`` is in reference standard deviations."""

    def __init__(self, *, threshold: float = 0.1) -> None:
        self.threshold = threshold
        self.reference: NumericSummary | None = None

    def fit(self, reference: Any) -> Self:
        """Keep the reference CDF; a constant reference cannot be normalised."""
        summary = _as_summary(reference)
        if summary.n > 0 and summary.std == 0:
            raise InvalidInput(
                "Normalised Wasserstein distance needs a reference with spread; the reference "
                f"is constant ({summary.values[0]!r}). Use method='ks' or 'psi' for this column."
            )
        self.reference = summary
        return self

    def score(self, current: Any) -> DriftResult:
        """W1(reference, current) / reference standard deviation."""
        reference = fitted(self.reference, "wasserstein")
        sample = current if isinstance(current, SortedSample) else SortedSample.from_values(current)
        if reference.n == 0 or sample.n == 0:
            return distance_result(0.0, self.threshold, "wasserstein")
        value = normalised_wasserstein(reference, NumericSummary.from_sorted(sample.values))
        return distance_result(value or 0.0, self.threshold, "wasserstein")
