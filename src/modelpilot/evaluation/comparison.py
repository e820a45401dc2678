"""The comparison with a baseline (usually the champion), metric by metric and slice by slice.

Both models are scored on the same bootstrap resamples, so each replicate of the difference
``model − baseline`` is paired: rows that are hard for both models cancel out. That makes a
non-inferiority statement cheap and honest: "ROC AUC is not worse than the champion's by more
than 0.005 at 95% confidence" holds when the one-sided 95% lower bound of the *improvement*
(the difference signed so that positive means better, i.e. negated for log loss or RMSE) is at
least −0.005. See :meth:`Difference.improvement_bound`.

>>> import numpy as np
>>> d = Difference("roc_auc", None, None, 0.86, 0.85, 0.01, 0.002, 0.018, True,
...                replicates=np.linspace(0.0, 0.02, 101))
>>> round(d.improvement_bound(0.95), 4)
0.001
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.evaluation.bootstrap import Draws, finite, lower_bound, percentile_interval
from modelpilot.evaluation.metrics import MetricSpec


@dataclass(frozen=True)
class Difference:
    """``model − baseline`` for one metric, overall (``column`` None) or in one slice.

    ``lower``/``upper`` bound the raw difference (two-sided, at the evaluation's confidence).
    ``replicates`` holds the paired bootstrap replicates of the raw difference; they stay in
    memory (not in :meth:`to_dict`) so a gate can ask for any confidence level.
    """

    metric: str
    column: str | None
    group: str | None
    model: float | None
    baseline: float | None
    difference: float | None
    lower: float | None
    upper: float | None
    higher_is_better: bool
    replicates: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def improvement(self) -> float | None:
        """The difference signed so that positive means the model is better."""
        if self.difference is None:
            return None
        return self.difference if self.higher_is_better else -self.difference

    def improvement_bound(self, confidence: float) -> float | None:
        """One-sided lower confidence bound on :attr:`improvement` (paired bootstrap).

        With no resamples (``n_bootstrap=0``) this is the point improvement.
        """
        if self.replicates is None or self.replicates.size == 0:
            return self.improvement
        signed = self.replicates if self.higher_is_better else -self.replicates
        return lower_bound(signed, confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "column": self.column,
            "group": self.group,
            "model": self.model,
            "baseline": self.baseline,
            "difference": self.difference,
            "lower": self.lower,
            "upper": self.upper,
            "higher_is_better": self.higher_is_better,
        }


@dataclass(frozen=True)
class Comparison:
    """Every :class:`Difference`: overall ones by metric name, then one list for slices."""

    metrics: dict[str, Difference]
    slices: list[Difference]

    def slice(self, metric: str, column: str, group: str) -> Difference:
        """The difference for ``metric`` in slice ``column == group``."""
        for d in self.slices:
            if (d.metric, d.column, d.group) == (metric, column, group):
                return d
        raise KeyError((metric, column, group))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "slices": [d.to_dict() for d in self.slices],
        }


def model_key(metric: str) -> Hashable:
    """The bootstrap key of the model's value of ``metric``."""
    return ("model", metric)


def baseline_key(metric: str) -> Hashable:
    """The bootstrap key of the baseline's value of ``metric``."""
    return ("baseline", metric)


def differences(
    draws: Draws,
    specs: Sequence[MetricSpec],
    *,
    confidence: float,
    column: str | None = None,
    group: str | None = None,
) -> list[Difference]:
    """One :class:`Difference` per metric from paired draws keyed by model/baseline keys."""
    out = []
    for spec in specs:
        mk, bk = model_key(spec.name), baseline_key(spec.name)
        if bk not in draws.points:
            continue
        model, baseline = finite(draws.points[mk]), finite(draws.points[bk])
        diff = None if model is None or baseline is None else model - baseline
        reps = draws.replicates[mk] - draws.replicates[bk]
        lower = upper = None
        if diff is not None and reps.size:
            lower, upper, _ = percentile_interval(reps, confidence)
        out.append(
            Difference(
                spec.name,
                column,
                group,
                model,
                baseline,
                diff,
                lower,
                upper,
                spec.higher_is_better,
                replicates=reps if reps.size else None,
            )
        )
    return out
