"""The dataset verdict: has the window drifted in a way that matters to the model?

Two rules, either of which decides (the report names the one that did):

* ``importance_share``: the share of feature columns that drifted, each weighted by how much
  the model relies on it (permutation importance from the model's stored evaluation, or
  equal weights when none is given), reaches ``drift_share`` (default 0.5). A drifted column
  the model ignores does not wake anyone; one the model leans on does. ``drift_share=0``
  restores the old rule: any drifted feature column.
* ``domain_classifier``: when the multivariate check ran (``detect_drift(...,
  multivariate=True)``), its out-of-fold AUC's confidence interval lies wholly above its
  threshold (0.5 plus a minimum effect, default 0.55): the rows of the window can be told
  from the reference's even though no single column says so.

Weights are the importances clipped at zero (shuffling a feature that makes the model better
is noise, not reliance) over the columns that were scored; skipped columns carry no weight.
With all weights zero the share is zero.

>>> weighted_share({"a": True, "b": False}, None)
0.5
>>> weighted_share({"a": True, "b": False}, {"a": 0.09, "b": 0.01})
0.9
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.multivariate import MultivariateDriftResult

DatasetRule = Literal["importance_share", "domain_classifier", "none"]
DATASET_RULES: tuple[DatasetRule, ...] = ("importance_share", "domain_classifier", "none")
DEFAULT_DRIFT_SHARE = 0.5  # Evidently's default too; with importance weights: half the model


@dataclass(frozen=True)
class DatasetDecision:
    """Which rule decided ``dataset_drift``, with the figures both rules looked at.

    ``weights`` is ``"importance"`` when the caller gave importances (a monitoring job passes
    the evaluation's permutation importance), ``"equal"`` otherwise; ``column_weights`` are
    the normalised weights of the scored feature columns. The ``auc*`` fields are ``None``
    when the domain classifier did not run.
    """

    rule: DatasetRule
    weighted_share: float
    drift_share: float
    weights: Literal["importance", "equal"]
    column_weights: dict[str, float]
    auc: float | None = None
    auc_lower: float | None = None
    auc_upper: float | None = None
    auc_threshold: float | None = None
    confidence: float | None = None

    @property
    def drifted(self) -> bool:
        """True when a rule fired."""
        return self.rule != "none"

    def summary(self) -> str:
        """One line for people: the verdict, the rule that decided it and the figures.

        >>> DatasetDecision("none", 0.2, 0.5, "equal", {}).summary()
        'no dataset drift (no rule fired): importance-weighted share 0.2 < 0.5 (equal weights)'
        """
        verdict = "dataset drift" if self.drifted else "no dataset drift"
        rule = "no rule fired" if self.rule == "none" else f"decided by {self.rule}"
        return f"{verdict} ({rule}): {self.figures()}"

    def figures(self) -> str:
        """What both rules measured, against their thresholds."""
        share_op = ">=" if _share_fires(self.weighted_share, self.drift_share) else "<"
        parts = [
            f"importance-weighted share {self.weighted_share:.3g} {share_op} "
            f"{self.drift_share:g} ({self.weights} weights)"
        ]
        if self.auc is not None and self.auc_lower is not None and self.auc_upper is not None:
            above = "above" if _domain_fires(self) else "not above"
            parts.append(
                f"domain-classifier AUC {self.auc:.3f}, {self.confidence or 0:.0%} interval "
                f"{self.auc_lower:.3f}-{self.auc_upper:.3f}, {above} {self.auc_threshold:g}"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "weighted_share": self.weighted_share,
            "drift_share": self.drift_share,
            "weights": self.weights,
            "column_weights": dict(self.column_weights),
            "auc": self.auc,
            "auc_lower": self.auc_lower,
            "auc_upper": self.auc_upper,
            "auc_threshold": self.auc_threshold,
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetDecision:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def weighted_share(drifted: Mapping[str, bool], weights: Mapping[str, float] | None) -> float:
    """The weight of the drifted columns over the weight of all of them, in [0, 1].

    ``weights=None`` weighs every column equally (the plain share of drifted columns);
    a column missing from ``weights`` weighs zero, as does a negative weight.
    """
    weights_used = _normalised(drifted, weights)
    return min(math.fsum(w for name, w in weights_used.items() if drifted[name]), 1.0)


def check_dataset_options(
    importance: Mapping[str, float] | None, features: list[str], drift_share: float
) -> None:
    """Refuse a share threshold outside [0, 1] and importances that are not finite numbers
    for checked feature columns."""
    if isinstance(drift_share, bool) or not 0 <= drift_share <= 1:
        raise InvalidInput(
            f"drift_share must be between 0 and 1 (the importance-weighted share of drifted "
            f"feature columns that makes dataset drift; 0: any drifted column); got "
            f"{shown(drift_share)}.",
            field="drift_share",
        )
    if importance is None:
        return
    unknown = [name for name in importance if name not in features]
    if unknown:
        raise InvalidInput(
            f"importance names {shown(unknown)}, which are not among the checked feature "
            f"columns {shown(features)}.",
            field="importance",
        )
    bad = {k: v for k, v in importance.items() if not _is_finite_number(v)}
    if bad:
        raise InvalidInput(
            f"importance must map column names to finite numbers (e.g. permutation "
            f"importance); got {shown(bad)}.",
            field="importance",
        )


def decide_dataset(
    drifted: Mapping[str, bool],
    importance: Mapping[str, float] | None,
    drift_share: float,
    domain: MultivariateDriftResult | None,
) -> DatasetDecision:
    """Apply both rules to the scored feature columns' verdicts and the domain classifier's."""
    share = weighted_share(drifted, importance)
    weights = _normalised(drifted, importance)
    decision = DatasetDecision(
        rule="none",
        weighted_share=share,
        drift_share=drift_share,
        weights="equal" if importance is None else "importance",
        column_weights=weights,
        auc=None if domain is None else domain.auc,
        auc_lower=None if domain is None else domain.auc_lower,
        auc_upper=None if domain is None else domain.auc_upper,
        auc_threshold=None if domain is None else domain.threshold,
        confidence=None if domain is None else domain.confidence,
    )
    if _share_fires(share, drift_share):
        return _with_rule(decision, "importance_share")
    if domain is not None and domain.drifted:
        return _with_rule(decision, "domain_classifier")
    return decision


def _share_fires(share: float, drift_share: float) -> bool:
    return share > 0 and share >= drift_share


def _domain_fires(decision: DatasetDecision) -> bool:
    lower, threshold = decision.auc_lower, decision.auc_threshold
    return lower is not None and threshold is not None and lower > threshold


def _with_rule(decision: DatasetDecision, rule: DatasetRule) -> DatasetDecision:
    return replace(decision, rule=rule)


def _normalised(
    drifted: Mapping[str, bool], importance: Mapping[str, float] | None
) -> dict[str, float]:
    if not drifted:
        return {}
    if importance is None:
        return dict.fromkeys(drifted, 1 / len(drifted))
    clipped = {name: max(float(importance.get(name, 0.0)), 0.0) for name in drifted}
    total = math.fsum(clipped.values())
    return {name: (w / total if total > 0 else 0.0) for name, w in clipped.items()}


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
